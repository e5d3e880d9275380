import Autodiff
import Kernels
import Random
import Testing

@testable import NN

@Test(arguments: GradientCheckCase.layers)
func layerPassesGradientCheck(_ check: GradientCheckCase) {
  let result = check.run()
  #expect(result.passed, "\(check.name): relative error \(result.maxRelativeError)")
}

/// The fused operation and its primitive reference give the same values and the same
/// gradients for every input, in Float64.
func expectFusedMatchesReference(
  _ inputs: [Tensor], _ fused: ([Tensor]) -> Tensor, _ reference: ([Tensor]) -> Tensor,
  _ name: String
) {
  func run(_ function: ([Tensor]) -> Tensor) -> (Tensor, [[Double]]) {
    let leaves = inputs.map { Tensor(shape: $0.shape, storage: $0.storage, requiresGradient: true) }
    let tape = Tape()
    let output = tape.record { function(leaves) }
    var generator = SeededGenerator(seed: 11)
    let seed = Tensor.normal(output.shape, dtype: .float64, generator: &generator)
    let gradients = tape.gradients(of: output, seed: seed)
    return (output, leaves.map { gradients[$0]!.scalars })
  }
  let (a, gradientsA) = run(fused)
  let (b, gradientsB) = run(reference)
  #expect(a.shape == b.shape, "\(name) shapes")
  #expect(zip(a.scalars, b.scalars).allSatisfy { abs($0 - $1) < 1e-12 }, "\(name) values")
  for (x, y) in zip(gradientsA, gradientsB) {
    #expect(zip(x, y).allSatisfy { abs($0 - $1) < 1e-12 }, "\(name) gradients")
  }
}

@Test func fusedOperationsMatchTheirReferences() {
  let layout = HeadLayout(batch: 2, length: 5, heads: 3, size: 4)
  let shape = [2, 5, 12]
  let x = TestValues.signed.tensor(shape, seed: 1)
  let y = TestValues.signed.tensor(shape, seed: 2)
  let z = TestValues.signed.tensor(shape, seed: 3)
  let w = TestValues.signed.tensor([12], seed: 4)
  expectFusedMatchesReference(
    [x, w], { rmsNorm($0[0], weight: $0[1], epsilon: 1e-6) },
    { rmsNormReference($0[0], weight: $0[1], epsilon: 1e-6) }, "rmsnorm")
  expectFusedMatchesReference(
    [x], { rotaryEmbedding($0[0], layout: layout, theta: 100) },
    { rotaryEmbeddingReference($0[0], layout: layout, theta: 100) }, "rotary")
  expectFusedMatchesReference(
    [x, y, z], { causalAttention(query: $0[0], key: $0[1], value: $0[2], layout: layout) },
    { causalAttentionReference(query: $0[0], key: $0[1], value: $0[2], layout: layout) },
    "attention")
  // Rows longer than one vector of the softmax (16 numbers), some ending inside their last
  // vector before the row does (`causalSoftmax` pads and zeroes them).
  let long = HeadLayout(batch: 1, length: 37, heads: 2, size: 4)
  let (q, k, v) = (
    TestValues.signed.tensor([1, 37, 8], seed: 8), TestValues.signed.tensor([1, 37, 8], seed: 9),
    TestValues.signed.tensor([1, 37, 8], seed: 10)
  )
  expectFusedMatchesReference(
    [q, k, v], { causalAttention(query: $0[0], key: $0[1], value: $0[2], layout: long) },
    { causalAttentionReference(query: $0[0], key: $0[1], value: $0[2], layout: long) },
    "attention over 37 positions")
  expectFusedMatchesReference(
    [x, y], { swiglu(gate: $0[0], up: $0[1]) }, { swigluReference(gate: $0[0], up: $0[1]) },
    "swiglu")
  let (weight, a, b) = (
    TestValues.signed.tensor([7, 12], seed: 5), TestValues.signed.tensor([3, 12], seed: 6),
    TestValues.signed.tensor([7, 3], seed: 7)
  )
  expectFusedMatchesReference(
    [x, weight, a, b], { lowRankLinear($0[0], weight: $0[1], a: $0[2], b: $0[3], scale: 1.5) },
    { lowRankLinearReference($0[0], weight: $0[1], a: $0[2], b: $0[3], scale: 1.5) },
    "low-rank linear")
}

/// With a power-of-two scale, the fused low-rank linear gives the reference's bits in
/// Float32, values and gradients, also for an input that three layers share (q, k and v
/// read the same normalized input): its gradient sums six contributions in the same order.
@Test func theLowRankLinearKeepsTheReferencesBits() {
  var generator = SeededGenerator(seed: 3)
  let x = Tensor.normal([2, 5, 12], generator: &generator)
  let layers = (0..<3).map { _ in
    (
      weight: Tensor.normal([10, 12], generator: &generator),
      a: Tensor.normal([4, 12], generator: &generator),
      b: Tensor.normal([10, 4], generator: &generator)
    )
  }
  let seed = Tensor.normal([2, 5, 10], generator: &generator)
  func run(
    _ linear: (Tensor, Tensor, Tensor, Tensor, Double) -> Tensor
  ) -> (output: [Float], gradients: [[Float]]) {
    let leaves = ([x] + layers.flatMap { [$0.a, $0.b] }).map {
      Tensor(shape: $0.shape, storage: $0.storage, requiresGradient: true)
    }
    let tape = Tape()
    let output = tape.record {
      (0..<3).map {
        linear(leaves[0], layers[$0].weight, leaves[1 + 2 * $0], leaves[2 + 2 * $0], 4)
      }
      .reduce(Tensor.zeros([2, 5, 10]), +)
    }
    let gradients = tape.gradients(of: output, seed: seed)
    return (output.floats, leaves.map { gradients[$0]!.floats })
  }
  let fused = run { lowRankLinear($0, weight: $1, a: $2, b: $3, scale: $4) }
  let reference = run { lowRankLinearReference($0, weight: $1, a: $2, b: $3, scale: $4) }
  let sameOutput = fused.output == reference.output
  let sameGradients = zip(fused.gradients, reference.gradients).map { $0 == $1 }
  #expect(sameOutput, "the outputs differ")
  #expect(sameGradients == [Bool](repeating: true, count: 7), "x, A₁, B₁, A₂, B₂, A₃, B₃")
}

@Test func attentionNeverSeesTheFuture() {
  let layout = HeadLayout(batch: 1, length: 6, heads: 2, size: 4)
  let q = TestValues.signed.tensor([1, 6, 8], seed: 1)
  let k = TestValues.signed.tensor([1, 6, 8], seed: 2)
  let v = TestValues.signed.tensor([1, 6, 8], seed: 3)
  let before = causalAttention(query: q, key: k, value: v, layout: layout).scalars
  // Change the keys and values of the last two positions.
  var kChanged = k.scalars
  var vChanged = v.scalars
  for i in 32..<48 {
    kChanged[i] += 5
    vChanged[i] -= 7
  }
  let after = causalAttention(
    query: q, key: Tensor(shape: k.shape, scalars: kChanged),
    value: Tensor(shape: v.shape, scalars: vChanged),
    layout: layout
  ).scalars
  #expect(before[0..<32] == after[0..<32])
  #expect(before[32..<48] != after[32..<48])
}

@Test func rotaryEmbeddingKeepsLengthsAndIsIdentityAtPositionZero() {
  let layout = HeadLayout(batch: 1, length: 3, heads: 1, size: 6)
  let x = TestValues.signed.tensor([1, 3, 6], seed: 4)
  let y = rotaryEmbedding(x, layout: layout, theta: 10_000).scalars
  #expect(Array(y[0..<6]) == Array(x.scalars[0..<6]))
  for position in 0..<3 {
    let before = x.scalars[position * 6..<position * 6 + 6].reduce(0) { $0 + $1 * $1 }
    let after = y[position * 6..<position * 6 + 6].reduce(0) { $0 + $1 * $1 }
    #expect(abs(before - after) < 1e-12)
  }
}

/// The selective scan's inputs x, Δ (positive), A (negative, as Mamba's −exp(A_log): the
/// state decays), B, C and D, for sequences of `length` steps.
private func scanInputs(batch: Int, length: Int, channels: Int, state: Int) -> (
  x: Tensor, delta: Tensor, a: Tensor, b: Tensor, c: Tensor, d: Tensor
) {
  (
    TestValues.signed.tensor([batch, length, channels], seed: 1),
    TestValues.positive.tensor([batch, length, channels], seed: 2),
    -exp(TestValues.signed.tensor([channels, state], seed: 3)),
    TestValues.signed.tensor([batch, length, state], seed: 4),
    TestValues.signed.tensor([batch, length, state], seed: 5),
    TestValues.signed.tensor([channels], seed: 6)
  )
}

@Test func theSelectiveScanAndCausalConvolutionMatchTheirReferences() {
  let (batch, length, channels) = (2, 7, 5)
  // A state of 16 runs the kernel's own copy of its loops; 3 and 20 the general one, with a
  // short piece (20: a whole piece of 16 and one of 4).
  for state in [3, 16, 20] {
    let (x, delta, a, b, c, d) = scanInputs(
      batch: batch, length: length, channels: channels, state: state)
    expectFusedMatchesReference(
      [x, delta, a, b, c, d],
      { selectiveScan(x: $0[0], delta: $0[1], a: $0[2], b: $0[3], c: $0[4], d: $0[5]) },
      { selectiveScanReference(x: $0[0], delta: $0[1], a: $0[2], b: $0[3], c: $0[4], d: $0[5]) },
      "selective scan, state \(state)")
  }
  let (x, _, _, _, _, _) = scanInputs(batch: batch, length: length, channels: channels, state: 3)
  for kernel in [1, 4, 9] {  // 9 taps reach past the start of a 7-step sequence
    let weight = TestValues.signed.tensor([channels, kernel], seed: 7)
    let bias = TestValues.signed.tensor([channels], seed: 8)
    expectFusedMatchesReference(
      [x, weight, bias], { causalConvolution($0[0], weight: $0[1], bias: $0[2]) },
      { causalConvolutionReference($0[0], weight: $0[1], bias: $0[2]) },
      "causal convolution, \(kernel) taps")
  }
}

@Test func theScanAndTheConvolutionNeverSeeALaterStep() {
  let (batch, length, channels, state) = (1, 6, 4, 3)
  var (x, delta, a, b, c, d) = scanInputs(
    batch: batch, length: length, channels: channels, state: state)
  let weight = TestValues.signed.tensor([channels, 4], seed: 7)
  func outputs() -> ([Double], [Double]) {
    (
      selectiveScan(x: x, delta: delta, a: a, b: b, c: c, d: d).scalars,
      causalConvolution(x, weight: weight, bias: nil).scalars
    )
  }
  let before = outputs()
  // Change the last two steps' inputs (and the scan's B there).
  x = Tensor(
    shape: x.shape,
    scalars: x.scalars.enumerated().map { $0 >= 4 * channels ? $1 + 3 : $1 })
  b = Tensor(
    shape: b.shape, scalars: b.scalars.enumerated().map { $0 >= 4 * state ? $1 - 2 : $1 })
  let after = outputs()
  for (name, (old, new)) in [("scan", (before.0, after.0)), ("convolution", (before.1, after.1))] {
    #expect(Array(old[..<(4 * channels)]) == Array(new[..<(4 * channels)]), "\(name): past changed")
    #expect(Array(old[(4 * channels)...]) != Array(new[(4 * channels)...]), "\(name): no effect")
  }
}
