import Autodiff
import Foundation
import NN
import Random
import SafeTensors
import Testing
import ToyTasks

@testable import LoRAMixer

/// A deterministic corpus of hostile variants of a valid file: bit flips, truncations,
/// spliced-in huge or non-finite numbers, invalid UTF-8, deep nesting and negative sizes.
/// Every reader must answer each one with a value or an error, never a crash or a hang.
struct Mutations: Sequence, IteratorProtocol {
  let original: [UInt8]
  let count: Int
  var generator: SeededGenerator
  var made = 0

  init(_ data: Data, count: Int, seed: UInt64) {
    original = Array(data)
    self.count = count
    generator = SeededGenerator(seed: seed)
  }

  static let splices: [String] = [
    "99999999999999999999999", "-1", "-9223372036854775808", "1e999", "NaN", "Infinity", "-0",
    "\"\u{0}\"", "null", "[]", "{}", String(repeating: "[", count: 5000),
    String(repeating: "{\"a\":", count: 3000), "\"F64\"", "\"I64\"", "[4294967296,4294967296]",
  ]

  mutating func next() -> Data? {
    guard made < count, !original.isEmpty else { return nil }
    made += 1
    var bytes = original
    let position = generator.nextInt(below: bytes.count)
    switch generator.nextInt(below: 6) {
    case 0:  // flip one to four bits
      for _ in 0...generator.nextInt(below: 4) {
        let at = generator.nextInt(below: bytes.count)
        bytes[at] ^= UInt8(1 << generator.nextInt(below: 8))
      }
    case 1:  // truncate
      bytes = Array(bytes.prefix(position))
    case 2:  // splice in a hostile token
      let splice = Array(Self.splices[generator.nextInt(below: Self.splices.count)].utf8)
      let end = Swift.min(bytes.count, position + generator.nextInt(below: 8))
      bytes.replaceSubrange(position..<end, with: splice)
    case 3:  // invalid UTF-8
      bytes.insert(contentsOf: [0xC0, 0xFF, 0xFE], at: position)
    case 4:  // duplicate a slice
      let end = Swift.min(bytes.count, position + 1 + generator.nextInt(below: 64))
      bytes.insert(contentsOf: bytes[position..<end], at: position)
    default:  // overwrite a byte with a random one
      bytes[position] = UInt8(generator.nextInt(below: 256))
    }
    return Data(bytes)
  }
}

/// Runs `read` on `count` mutations of `valid`; returns how many were refused.
@discardableResult
func survive(_ valid: Data, count: Int, seed: UInt64, _ read: (Data) throws -> Void) -> Int {
  var refused = 0
  for mutated in Mutations(valid, count: count, seed: seed) {
    do { try read(mutated) } catch { refused += 1 }
  }
  return refused
}

/// A small model, tokenizer, adapter and mixer written to a folder, to mutate.
func validFiles() throws -> URL {
  let folder = temporaryFolder("mutations")
  let model = LlamaForCausalLM(small, seed: 1)
  try model.save(to: folder.appendingPathComponent("model"))
  let tokenizer = Tokenizer(words: (0..<12).map { "w\($0)" })
  try tokenizer.save(to: folder.appendingPathComponent("model"), contextLength: 8)
  let experts = (0..<2).map { index in
    let adapters = attachLoRA(to: model, rank: 2, alpha: 4, seed: UInt64(index))
    return (
      name: "e\(index)",
      adapters: Dictionary(uniqueKeysWithValues: adapters.map { ($0.path, $0.adapter) }),
      file: LoRAAdapterFile(adapters: adapters, alpha: 4, baseModel: "model")
    )
  }
  let mixture = Mixture(
    model: model, experts: experts.map { ($0.name, $0.adapters) }, seed: 2)
  try MixerFiles.save(
    mixture, experts: experts.map(\.file), baseModel: "model",
    to: folder.appendingPathComponent("mixer"))
  return folder
}

@Test func hostileFilesGiveErrorsNeverCrashes() throws {
  let folder = try validFiles()
  defer { try? FileManager.default.removeItem(at: folder) }
  let scratch = folder.appendingPathComponent("scratch")
  // How many mutations each reader refused: reaching the end at all means none crashed,
  // and a reader that refused nothing would not be reading.
  var refused: [String: Int] = [:]

  // safetensors: every mutation of the weights file is parsed from memory.
  let weights = try Data(contentsOf: folder.appendingPathComponent("model/model.safetensors"))
  refused["safetensors"] = survive(weights, count: 3000, seed: 1) {
    _ = try SafeTensorsFile.parse($0)
  }

  // JSON and the model config.
  let config = try Data(contentsOf: folder.appendingPathComponent("model/config.json"))
  refused["config"] = survive(config, count: 2000, seed: 2) { data in
    _ = try LlamaConfiguration(configJSON: try JSON.parse(data), path: "config.json")
  }

  // Files read from folders: the tokenizer, an adapter, a mixer.
  func mutateFile(
    _ name: String, in source: URL, count: Int, seed: UInt64, read: (URL) throws -> Void
  ) throws -> Int {
    let valid = try Data(contentsOf: source.appendingPathComponent(name))
    try? FileManager.default.removeItem(at: scratch)
    try FileManager.default.copyItem(at: source, to: scratch)
    return survive(valid, count: count, seed: seed) { data in
      try data.write(to: scratch.appendingPathComponent(name))
      try read(scratch)
    }
  }
  refused["tokenizer"] = try mutateFile(
    "tokenizer.json", in: folder.appendingPathComponent("model"), count: 500, seed: 3
  ) { _ = try Tokenizer.load(from: $0) }
  let expert = folder.appendingPathComponent("mixer/experts/e0")
  for (index, name) in ["adapter_config.json", "adapter_model.safetensors"].enumerated() {
    refused[name] = try mutateFile(name, in: expert, count: 500, seed: 4 + UInt64(index)) {
      _ = try LoRAAdapterFile.load(from: $0)
    }
  }
  refused["mixer"] = try mutateFile(
    MixerFiles.configName, in: folder.appendingPathComponent("mixer"), count: 500, seed: 6
  ) { _ = try MixerFiles.readConfig($0) }

  // The dataset TSV reader.
  let tsv = Data(
    TaskFile.format((0..<40).map { Example(prompt: "w\($0) w\($0 % 7)", answer: "w\($0 % 3)") })
      .utf8)
  refused["tsv"] = survive(tsv, count: 2000, seed: 7) { data in
    _ = try TaskFile.parse(String(decoding: data, as: UTF8.self), path: "train.tsv")
  }

  for (reader, count) in refused { #expect(count > 0, "\(reader) refused none of its mutations") }
  #expect(refused["safetensors"]! > 1000, "most mutations of a safetensors file are invalid")
}

@Test func aRouterHoldingANaNIsNamedWhenTheMixerLoads() throws {
  let folder = try validFiles()
  defer { try? FileManager.default.removeItem(at: folder) }
  let mixer = folder.appendingPathComponent("mixer")
  let url = mixer.appendingPathComponent(MixerFiles.routersName)
  var routers = try readSafeTensors(url)
  let name = try #require(routers.tensors.keys.sorted().first)
  let stored = try #require(Tensor(routers.tensors[name]!, dtype: .float32))
  var scalars = stored.scalars
  scalars[0] = .nan
  routers.tensors[name] = SafeTensor(Tensor(shape: stored.shape, scalars: scalars))
  try routers.write(to: url)
  let model = LlamaForCausalLM(small, seed: 1)
  let error = #expect(throws: ModelFileError.self) {
    _ = try MixerFiles.load(from: mixer, onto: model)
  }
  #expect(
    error?.message == "router '\(name)' holds a NaN or an infinity", "\(String(describing: error))")
}

/// Rewrites tensor `name` (the first in name order if nil) of the safetensors file `url`,
/// its first value set to `value`; returns the tensor's name.
@discardableResult
func plant(_ value: Double, in url: URL, tensor name: String? = nil) throws -> String {
  var file = try readSafeTensors(url)
  let name = name ?? file.tensors.keys.sorted().first!
  let stored = try #require(Tensor(file.tensors[name]!, dtype: .float32))
  var scalars = stored.scalars
  scalars[0] = value
  file.tensors[name] = SafeTensor(Tensor(shape: stored.shape, scalars: scalars))
  try file.write(to: url)
  return name
}

@Test(arguments: [Double.nan, .infinity])
func nonFiniteWeightsAreNamedWhenABaseOrAnAdapterLoads(_ value: Double) throws {
  let folder = try validFiles()
  defer { try? FileManager.default.removeItem(at: folder) }
  let model = folder.appendingPathComponent("model")
  let weight = try plant(value, in: model.appendingPathComponent("model.safetensors"))
  let baseError = #expect(throws: ModelFileError.self) {
    _ = try LlamaForCausalLM.load(from: model)
  }
  #expect(baseError?.message == "tensor '\(weight)' holds a NaN or an infinity")

  let adapter = folder.appendingPathComponent("mixer/experts/e0")
  let key = try plant(value, in: adapter.appendingPathComponent("adapter_model.safetensors"))
  let adapterError = #expect(throws: ModelFileError.self) {
    _ = try LoRAAdapterFile.load(from: adapter)
  }
  #expect(adapterError?.message == "key '\(key)' holds a NaN or an infinity")
}

@Test func aLoRAScaleThatOverflowsTheUpdateIsRefused() throws {
  let folder = try validFiles()
  defer { try? FileManager.default.removeItem(at: folder) }
  let adapter = folder.appendingPathComponent("mixer/experts/e0")
  // B away from zero (a fresh adapter's B is zero, and any scale of zero is zero).
  let weights = adapter.appendingPathComponent("adapter_model.safetensors")
  for key in try readSafeTensors(weights).tensors.keys where key.contains("lora_B") {
    try plant(0.5, in: weights, tensor: key)
  }
  #expect(throws: Never.self) { _ = try LoRAAdapterFile.load(from: adapter) }
  let config = adapter.appendingPathComponent("adapter_config.json")
  let text = try String(contentsOf: config, encoding: .utf8)
  let alpha = try #require(
    text.range(of: #""lora_alpha" *: *[0-9.]+"#, options: .regularExpression))
  try Data(text.replacingCharacters(in: alpha, with: "\"lora_alpha\": 1e30").utf8).write(to: config)
  let error = #expect(throws: ModelFileError.self) { _ = try LoRAAdapterFile.load(from: adapter) }
  #expect(
    error?.message.contains("which makes its update overflow") == true,
    "\(String(describing: error))")
}
