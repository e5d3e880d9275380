// Lesson 03: a tiny Llama, piece by piece, then trained on toy-sst2.
// Run: swift run -c release lesson03-tiny-transformer   (--quick for a short run)

import Autodiff
import Exercises
import Foundation
import Kernels
import NN
import Random
import ToyTasks
import Training

// `--exercise` checks this lesson's exercise (exercise.swift) instead of running it.
if CommandLine.arguments.contains("--exercise") {
  exit(checkRMSNormBackward(rmsNormInputGradient).report())
}

let quick = CommandLine.arguments.contains("--quick")
func show(_ label: String, _ values: [Double], digits: Int = 4) {
  print("  \(label) [\(values.map { String(format: "%.\(digits)f", $0) }.joined(separator: ", "))]")
}

// Step 1. RMSNorm: scale each vector to a root-mean-square of 1, then by a learned weight.
print("Step 1: RMSNorm of x = [1, 2, 3, 4]")
let x = Tensor(shape: [1, 4], scalars: [1.0, 2, 3, 4])
let ones = Tensor.ones([4], dtype: .float64)
show("rms(x) =", [sqrt((1.0 + 4 + 9 + 16) / 4)])
show("rmsNorm(x) =", rmsNorm(x, weight: ones, epsilon: 0).scalars)
show("the reference, x · rsqrt(mean(x²)) =", rmsNormReference(x, weight: ones, epsilon: 0).scalars)

// Step 2. Rotary embedding: rotate pairs of features by an angle proportional to the
// position. A query and a key rotated this way score by their distance, not their place.
print("\nStep 2: rotary embedding makes q·k depend on the distance between positions")
var random = SeededGenerator(seed: 1)
let q = Tensor.normal([8], dtype: .float64, generator: &random).scalars
let k = Tensor.normal([8], dtype: .float64, generator: &random).scalars
func rotatedScore(query position: Int, key keyPosition: Int) -> Double {
  let length = max(position, keyPosition) + 1
  let layout = HeadLayout(batch: 1, length: length, heads: 1, size: 8)
  func placed(_ vector: [Double], at index: Int) -> Tensor {
    var values = [Double](repeating: 0, count: length * 8)
    values.replaceSubrange(index * 8..<index * 8 + 8, with: vector)
    return rotaryEmbedding(
      Tensor(shape: [1, length, 8], scalars: values), layout: layout, theta: 10_000)
  }
  let a = placed(q, at: position).scalars[position * 8..<position * 8 + 8]
  let b = placed(k, at: keyPosition).scalars[keyPosition * 8..<keyPosition * 8 + 8]
  return zip(a, b).reduce(0) { $0 + $1.0 * $1.1 }
}
for (m, n) in [(3, 1), (7, 5), (12, 10), (12, 4)] {
  print(
    String(
      format: "  query at %2d, key at %2d (distance %d): q·k = %.6f", m, n, m - n,
      rotatedScore(query: m, key: n)))
}

// Step 3. Causal attention: each position mixes the values of itself and the positions
// before it, weighted by a softmax of scaled query-key scores.
print("\nStep 3: causal attention over 4 positions, 1 head of size 4")
let layout = HeadLayout(batch: 1, length: 4, heads: 1, size: 4)
let queries = Tensor.normal([1, 4, 4], dtype: .float64, generator: &random)
let keys = Tensor.normal([1, 4, 4], dtype: .float64, generator: &random)
// Each position's value vector is (position + 1, 0, 0, 0).
var valueScalars = [Double](repeating: 0, count: 16)
for position in 0..<4 { valueScalars[position * 4] = Double(position + 1) }
let values = Tensor(shape: [1, 4, 4], scalars: valueScalars)
let attended = causalAttention(query: queries, key: keys, value: values, layout: layout).scalars
show(
  "value vectors (first feature = position + 1):", (0..<4).map { values.scalars[$0 * 4] }, digits: 1
)
show("output, first feature:", (0..<4).map { attended[$0 * 4] })
print("  position 0 sees only itself, so its output is its own value: \(attended[0] == 1)")
var changed = values.scalars
changed[12] = 100
let afterChange = causalAttention(
  query: queries, key: keys, value: Tensor(shape: [1, 4, 4], scalars: changed), layout: layout
).scalars
print(
  "  changing the last value leaves positions 0 to 2 unchanged: \(Array(afterChange[0..<12]) == Array(attended[0..<12]))"
)

// Step 4. SwiGLU: the MLP gates one projection with SiLU of another.
print("\nStep 4: SwiGLU gate, silu(g) · u with u = 1")
let g = Tensor(shape: [5], scalars: [-2.0, -1, 0, 1, 2])
show("silu(g) =", swiglu(gate: g, up: Tensor.ones([5], dtype: .float64)).scalars)

// Step 5. The whole model, with Hugging Face's parameter names.
print("\nStep 5: the decoder")
// ./Datasets when run from the clone's root, else the one of the clone this was built from.
let datasets = ToyTask.datasetsFolder(
  sourceRoot: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent())
let train = try ToyTask.sst2.load(.train, from: datasets)
let dev = try ToyTask.sst2.load(.dev, from: datasets)
let tokenizer = Tokenizer(examples: train + dev + (try ToyTask.sst2.load(.test, from: datasets)))
let configuration = LlamaConfiguration(
  vocabularySize: tokenizer.count, hiddenSize: 64, layers: 2, heads: 2, intermediateSize: 192,
  contextLength: 32)
let model = LlamaForCausalLM(configuration, seed: 0)
for (name, tensor) in model.namedParameters().prefix(11) { print("  \(name) \(tensor.shape)") }
print("  … \(model.namedParameters().count) tensors, \(model.parameterCount) parameters in all")

// Step 6. Train it, every parameter, on toy-sst2's answers.
let steps = quick ? 20 : 400
print("\nStep 6: training all \(model.parameterCount) parameters on toy-sst2 for \(steps) steps")
print(
  String(format: "  dev accuracy before: %.1f%%", 100 * model.accuracy(dev, tokenizer: tokenizer)))
_ = try Training.train(
  parameters: model.namedParameters(), examples: train,
  settings: TrainingSettings(steps: steps, batchSize: 32, learningRate: 1e-3, weightDecay: 0.01),
  loss: { model.loss($0, tokenizer: tokenizer) },
  report: { report in
    if report.step % (steps / 4) == 0 {
      print(
        String(
          format: "  step %3d: loss %.4f, dev accuracy %.1f%%", report.step, report.loss,
          100 * model.accuracy(dev, tokenizer: tokenizer)))
    }
  })
