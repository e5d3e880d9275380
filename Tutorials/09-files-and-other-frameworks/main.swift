// Lesson 09: the files tinymixer shares with the Python ecosystem.
// Run: swift run -c release lesson09-files-and-other-frameworks

import Autodiff
import Exercises
import Foundation
import LoRAMixer
import NN
import SafeTensors

// `--exercise` checks this lesson's exercise (exercise.swift) instead of running it.
if CommandLine.arguments.contains("--exercise") {
  exit(checkSafeTensorsHeader(tensorRanges).report())
}

let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
  "lesson09-\(ProcessInfo.processInfo.processIdentifier)")
defer { try? FileManager.default.removeItem(at: folder) }

// Step 1. A safetensors file, byte by byte: an 8-byte little-endian header length, a JSON
// header, then the raw little-endian data.
print("Step 1: a safetensors file with two small tensors")
let file = SafeTensorsFile(
  tensors: [
    "bias": SafeTensor(shape: [2], floats: [0.5, -1]),
    "weight": SafeTensor(shape: [2, 2], doubles: [1, 2, 3, 4]),
  ], metadata: ["format": "pt"])
let bytes = file.serialized()
let headerLength = bytes.prefix(8).enumerated().reduce(0) {
  $0 | Int($1.element) << (8 * $1.offset)
}
print(
  "  first 8 bytes: \(bytes.prefix(8).map { String(format: "%02x", $0) }.joined(separator: " ")) = \(headerLength), the header's length"
)
print("  header: \(String(decoding: bytes.dropFirst(8).prefix(headerLength), as: UTF8.self))")
print(
  "  then \(bytes.count - 8 - headerLength) bytes of data: F64 first (the larger alignment), then F32"
)

// Step 2. A model directory, as Hugging Face's LlamaForCausalLM reads it.
print("\nStep 2: a model directory")
let configuration = LlamaConfiguration(
  vocabularySize: 11, hiddenSize: 8, layers: 1, heads: 2, intermediateSize: 12, contextLength: 6)
let model = LlamaForCausalLM(configuration, seed: 1)
let modelFolder = folder.appendingPathComponent("model")
try model.save(to: modelFolder)
print(
  "  files: \(try FileManager.default.contentsOfDirectory(atPath: modelFolder.path).sorted().joined(separator: ", "))"
)
let names = try SafeTensorsFile.read(from: modelFolder.appendingPathComponent("model.safetensors"))
  .tensors.keys.sorted()
print("  \(names.count) tensors, for example \(names[0]) and \(names[names.count - 1])")
let reloaded = try LlamaForCausalLM.load(from: modelFolder)
let ids = [1, 5, 2, 9, 4, 3]
print(
  "  read back, same logits bit for bit: \(reloaded.logits(ids, batch: 1, length: 6).floats == model.logits(ids, batch: 1, length: 6).floats)"
)

// Step 3. A PEFT adapter directory, out and back in.
print("\nStep 3: a PEFT adapter directory")
let adapters = attachLoRA(to: model, rank: 2, alpha: 4, seed: 2)
let adapterFolder = folder.appendingPathComponent("adapter")
try LoRAAdapterFile(adapters: adapters, alpha: 4, baseModel: modelFolder.path).save(
  to: adapterFolder)
let keys = try SafeTensorsFile.read(
  from: adapterFolder.appendingPathComponent("adapter_model.safetensors")
).tensors.keys.sorted()
print("  \(keys.count) keys, for example \(keys[0])")
let adapter = try LoRAAdapterFile.load(from: adapterFolder)
print(
  "  read back: \(adapter.sites.count) layers, scale \(adapter.sites.values.first!.scale) (lora_alpha / r)"
)
print("  nothing left out: \(try adapter.omissions(on: model).isEmpty)")
