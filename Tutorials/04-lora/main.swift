// Lesson 04: LoRA, a low-rank update on a frozen model.
// Run: swift run -c release lesson04-lora   (--quick for a short run with a tiny base)

import Autodiff
import Exercises
import Foundation
import LoRAMixer
import NN
import Random
import ToyTasks
import Training

// `--exercise` checks this lesson's exercise (exercise.swift) instead of running it.
if CommandLine.arguments.contains("--exercise") { exit(checkLoRAMerge(mergedWeight).report()) }

let quick = CommandLine.arguments.contains("--quick")

// Step 1. Parameter counts: a full update of W [out, in] against a rank-r update B·A.
print("Step 1: what a rank-8 update costs")
let width = 128
let rank = 8
print("  a full update of one 128 × 128 projection: \(width * width) numbers")
let share = 100 * Double(rank * (width + width)) / Double(width * width)
print("  B [128 × 8] and A [8 × 128]: \(rank * (width + width)) numbers, \(share)% of it")

// Step 2. B starts at zero, so a fresh adapter changes nothing, and only B moves first.
print("\nStep 2: a fresh adapter")
var random = SeededGenerator(seed: 1)
let linear = Linear(inputs: 8, outputs: 6, dtype: .float64, generator: &random)
linear.weight.requiresGradient = false
let x = Tensor.normal([4, 8], dtype: .float64, generator: &random)
let before = linear(x).scalars
let lora = LoRA(inputs: 8, outputs: 6, rank: 2, alpha: 4, dtype: .float64, generator: &random)
linear.adapter = lora
print("  outputs with the adapter equal those without, bit for bit: \(linear(x).scalars == before)")
let tape = Tape()
let loss = tape.record { (linear(x) * linear(x)).sum() }
let gradients = tape.gradients(of: loss)
func norm(_ t: Tensor) -> Double { t.scalars.reduce(0) { $0 + $1 * $1 }.squareRoot() }
print(
  String(format: "  |dL/dB| = %.4f: B learns from the first step", norm(gradients[lora.b.weight]!))
)
print(
  String(
    format: "  |dL/dA| = %.4f: A waits until B is no longer zero",
    norm(gradients[lora.a.weight]!)))

// Step 3. Merging: W + s·B·A computes the same function with no extra work.
print("\nStep 3: merging the update into W")
lora.b.weight.assign(Tensor.normal([6, 2], dtype: .float64, generator: &random).storage)
let adapted = linear(x).scalars
lora.merge(into: linear)
let merged = linear(x).scalars
print(
  String(
    format: "  largest difference, merged against adapter: %.1e",
    zip(adapted, merged).map { abs($0 - $1) }.max()!))
lora.unmerge(from: linear)
print(
  String(
    format: "  and after unmerging: %.1e",
    zip(adapted, linear(x).scalars).map { abs($0 - $1) }.max()!))

// Step 4. A LoRA expert for toy-sst2 on the frozen base model, as `tinymixer train` does.
print("\nStep 4: a toy-sst2 expert on the frozen base")
// ./Datasets and ./Models when run from the clone's root, else those of the clone this was
// built from.
let sourceRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
  .deletingLastPathComponent().deletingLastPathComponent()
let datasets = ToyTask.datasetsFolder(sourceRoot: sourceRoot)
let splits = try ToyTask.all.map { task in
  try Split.allCases.map { try task.load($0, from: datasets) }
}
let tokenizer = Tokenizer(examples: splits.flatMap { $0.flatMap { $0 } })
var base = BaseRecipe()
var expert = ExpertRecipe.standard
var cache = BaseRecipe.cacheFolder
if quick {
  (base.hiddenSize, base.layers, base.heads, base.intermediateSize, base.training.steps) = (
    16, 1, 2, 32, 3
  )
  expert.training.steps = 8
  cache = FileManager.default.temporaryDirectory.appendingPathComponent(
    "lesson04-\(ProcessInfo.processInfo.processIdentifier)")
}
// The cached base, else the one shipped in Models/, else pretrained (about a minute).
let (model, _, _) = try base.loadOrPretrain(
  tokenizer: tokenizer, tasks: splits.map { $0[0] }, cache: cache,
  shipped: packageFolder("Models", sourceRoot: sourceRoot))
let (train, dev, test) = (
  try ToyTask.sst2.load(.train, from: datasets), try ToyTask.sst2.load(.dev, from: datasets),
  try ToyTask.sst2.load(.test, from: datasets)
)
print("  the frozen base's parameters: \(model.parameterCount)")
print(
  String(
    format: "  test accuracy of the base alone: %.1f%%",
    100 * model.accuracy(test, tokenizer: tokenizer)))
let every = max(1, expert.training.steps / 4)
let (adapters, _) = try expert.train(model, on: train, tokenizer: tokenizer, seed: 0) { report in
  if report.step % every == 0 {
    print(
      String(
        format: "  step %3d: loss %.4f, dev accuracy %.1f%%", report.step, report.loss,
        100 * model.accuracy(dev, tokenizer: tokenizer)))
  }
}
let trained = adapters.reduce(0) { $0 + $1.adapter.a.weight.count + $1.adapter.b.weight.count }
print("  trained: \(trained) numbers in \(adapters.count) adapters")
print(
  String(
    format: "  test accuracy with the expert: %.1f%%",
    100 * model.accuracy(test, tokenizer: tokenizer)))
