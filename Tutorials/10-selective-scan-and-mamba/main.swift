// Lesson 10: the selective scan and a tiny Mamba.
//
// Mamba replaces attention by a recurrence whose coefficients depend on the input. This
// program runs that recurrence by hand on one channel, holds the fused kernel to it,
// checks its backward pass input by input, shows what a backward pass that forgets the
// carry gets wrong, and puts LoRA-Mixer's routed experts into a tiny Mamba.

import Autodiff
import Exercises
import Foundation
import LoRAMixer
import NN

// `--exercise` checks this lesson's exercise (exercise.swift) instead of running it.
if CommandLine.arguments.contains("--exercise") { exit(checkScan(scanOneChannel).report()) }

print("Step 1: the recurrence by hand, one channel, state of 2")
// One sequence of 4 steps, one channel: x_t, the step size Δ_t, and B_t, C_t per step.
let xs = [1.0, -0.5, 0.25, 2.0]
let deltas = [0.5, 0.1, 1.0, 0.2]
let aRow = [-1.0, -3.0]  // A: how fast each state number decays
let bs = [[1.0, 0.5], [0.2, -1.0], [0.0, 1.0], [1.0, 1.0]]
let cs = [[1.0, 1.0], [0.5, -0.5], [1.0, 0.0], [-1.0, 2.0]]
let dSkip = 0.5
var h = [0.0, 0.0]
var byHand: [Double] = []
for t in 0..<4 {
  for n in 0..<2 {
    // h_t = exp(Δ_t·A)·h_{t−1} + Δ_t·B_t·x_t: decay what was kept, write what is new.
    h[n] = exp(deltas[t] * aRow[n]) * h[n] + deltas[t] * bs[t][n] * xs[t]
  }
  // y_t = ⟨C_t, h_t⟩ + D·x_t: read the state out.
  byHand.append(cs[t][0] * h[0] + cs[t][1] * h[1] + dSkip * xs[t])
  print(String(format: "  t = %d  h = (%+.4f, %+.4f)  y = %+.4f", t, h[0], h[1], byHand[t]))
}
let fused = selectiveScan(
  x: Tensor(shape: [1, 4, 1], scalars: xs, dtype: .float64),
  delta: Tensor(shape: [1, 4, 1], scalars: deltas, dtype: .float64),
  a: Tensor(shape: [1, 2], scalars: aRow, dtype: .float64),
  b: Tensor(shape: [1, 4, 2], scalars: bs.flatMap { $0 }, dtype: .float64),
  c: Tensor(shape: [1, 4, 2], scalars: cs.flatMap { $0 }, dtype: .float64),
  d: Tensor(shape: [1], scalars: [dSkip], dtype: .float64))
let gap = zip(fused.scalars, byHand).map { abs($0 - $1) }.max()!
print(
  "  the fused kernel gives the same y: \(gap < 1e-15 ? "yes" : "no") (largest difference below 1e-15)"
)

print("\nStep 2: the backward pass, checked input by input")
// A batch of 2 sequences of 5 steps, 3 channels, a state of 2; Δ positive, A negative.
func input(_ shape: [Int], seed: UInt64, positive: Bool = false) -> Tensor {
  (positive ? TestValues.positive : TestValues.signed).tensor(shape, seed: seed)
}
let inputs = [
  ("x", input([2, 5, 3], seed: 1)), ("Δ", input([2, 5, 3], seed: 2, positive: true)),
  ("A", -exp(input([3, 2], seed: 3))), ("B", input([2, 5, 2], seed: 4)),
  ("C", input([2, 5, 2], seed: 5)), ("D", input([3], seed: 6)),
]
for (index, (name, _)) in inputs.enumerated() {
  // Only this input moves; the others are fixed.
  let result = GradientCheck.check(
    { moved in
      var all = inputs.map(\.1)
      all[index] = moved[0]
      return selectiveScan(x: all[0], delta: all[1], a: all[2], b: all[3], c: all[4], d: all[5])
    }, at: [inputs[index].1])
  print("  \(name): \(result.passed ? "matches" : "DIFFERS FROM") finite differences")
}

print("\nStep 3: a backward pass that forgets the carry")
// The same recurrence with h_{t−1} detached: the gradient stops at each step, as if
// dh_t did not carry exp(Δ_{t+1}·A)·dh_{t+1} back from the later steps.
func scanWithoutCarry(_ x: Tensor, _ delta: Tensor, _ a: Tensor, _ b: Tensor, _ c: Tensor)
  -> Tensor
{
  var state = Tensor.zeros([2, 3, 2], dtype: .float64)
  var outputs: [Tensor] = []
  for t in 0..<5 {
    let step = { (tensor: Tensor, width: Int) in
      tensor.sliced(along: 1, t..<t + 1).reshaped([2, width])
    }
    let (xt, dt) = (step(x, 3), step(delta, 3))
    state =
      exp(dt.reshaped([2, 3, 1]) * a) * state.detached()
      + (dt * xt).reshaped([2, 3, 1]) * step(b, 2).reshaped([2, 1, 2])
    outputs.append((state * step(c, 2).reshaped([2, 1, 2])).sum(axes: [2]).reshaped([2, 1, 3]))
  }
  return concatenate(outputs, along: 1)
}
let truncated = GradientCheck.check(
  { scanWithoutCarry($0[0], inputs[1].1, inputs[2].1, inputs[3].1, inputs[4].1) },
  at: [inputs[0].1])
print(
  "  x: \(truncated.passed ? "matches" : "differs from") finite differences, relative error \(truncated.maxRelativeError > 0.01 ? "above 1%" : "small")"
)

print("\nStep 4: where the experts go in a Mamba")
let model = MambaForCausalLM(
  MambaConfiguration(
    vocabularySize: 11, hiddenSize: 8, layers: 2, stateSize: 3, convolutionKernel: 3),
  seed: 3, dtype: .float64)
let baseCount = model.parameterCount  // before any expert is attached
let experts = (0..<3).map { index in
  let adapters = attachLoRA(
    to: model, targets: mambaProjections, rank: 2, alpha: 4, seed: 10 + UInt64(index))
  return (
    name: "expert\(index)",
    adapters: Dictionary(uniqueKeysWithValues: adapters.map { ($0.path, $0.adapter) })
  )
}
let mixture = Mixture(
  model: model, experts: experts, targets: mambaProjections, settings: RoutingSettings(),
  seed: 0)
for (path, site) in mixture.sites.prefix(4) {
  print(
    "  \(path): \(site.router.weight.shape[0]) experts, router of \(site.router.weight.count) numbers"
  )
}
print(
  "  … \(mixture.sites.count) routed sites in all; the base has \(baseCount) numbers, the routers \(mixture.routerParameters().reduce(0) { $0 + $1.tensor.count })"
)
let frozen = model.namedParameters().filter { !$0.tensor.requiresGradient }.map(\.name)
print(
  "  frozen, and routed nowhere: \(frozen.filter { $0.hasSuffix("A_log") || $0.hasSuffix(".D") || $0.contains("conv1d") }.count) tensors of A_log, D and the convolution"
)
