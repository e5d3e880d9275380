import Foundation
import Random
import Testing

@testable import Autodiff

@Test func chainOfOneHundredThousandOperationsRunsBackwardAndIsReleased() {
  let x = Tensor(shape: [2], scalars: [1.0, -2.0], requiresGradient: true)
  var tape: Tape? = Tape()
  let y = tape!.record {
    var h = x
    for _ in 0..<50_000 { h = h * 1.00001 + 0.0 }
    return h.sum()
  }
  #expect(tape!.count == 100_001)
  let gradient = tape!.gradients(of: y)[x]!.scalars
  let expected = Foundation.pow(1.00001, 50_000.0)
  #expect(abs(gradient[0] - expected) < 1e-9 * expected)
  #expect(abs(gradient[1] - expected) < 1e-9 * expected)
  weak let released = tape
  tape = nil  // frees 100,001 records, without recursion (a stack overflow would crash)
  #expect(released == nil, "something still holds the tape")
}

@Test func backwardTwiceGivesIdenticalGradients() {
  var generator = SeededGenerator(seed: 3)
  let w = Tensor.normal([3, 4], dtype: .float64, generator: &generator)
  w.requiresGradient = true
  let x = Tensor.normal([5, 3], dtype: .float64, generator: &generator)
  let tape = Tape()
  let loss = tape.record { tanh(matmul(x, w)).softmax().max(axes: [1]).sum() }
  let first = tape.gradients(of: loss)[w]!.scalars
  let second = tape.gradients(of: loss)[w]!.scalars
  #expect(first == second)
}

@Test func aTensorUsedTwiceReceivesBothContributions() {
  let x = Tensor(shape: [3], scalars: [0.5, -1.0, 2.0], requiresGradient: true)
  let tape = Tape()
  let y = tape.record { (x * x + x).sum() }  // dy/dx = 2x + 1
  #expect(tape.gradients(of: y)[x]!.scalars == [2.0, -1.0, 5.0])
}

@Test func frozenTensorsGetNoGradientAndNoBackwardWork() {
  let frozen = Tensor(shape: [2], scalars: [1.0, 2.0])
  let trained = Tensor(shape: [2], scalars: [3.0, 4.0], requiresGradient: true)
  var frozenProductsComputed = 0
  let tape = Tape()
  let y = tape.record { () -> Tensor in
    let product = (frozen.detached() * trained.detached()).recorded(
      (
        frozen,
        { g in
          frozenProductsComputed += 1
          return g * trained
        }
      ),
      (trained, { g in g * frozen }))
    return product.sum()
  }
  let gradients = tape.gradients(of: y)
  #expect(gradients[frozen] == nil)
  #expect(gradients[trained]!.scalars == [1.0, 2.0])
  #expect(frozenProductsComputed == 0)
  #expect(gradients.count == 1)
}

@Test func nothingIsRecordedWithoutATapeOrWithoutGradients() {
  let x = Tensor(shape: [2], scalars: [1.0, 2.0], requiresGradient: true)
  let y = exp(x) * 2  // no active tape: inference
  #expect(!y.requiresGradient)
  let tape = Tape()
  let z = tape.record { exp(Tensor(shape: [2], scalars: [1.0, 2.0])) * 2 }
  #expect(tape.count == 0)
  #expect(!z.requiresGradient)
}

@Test func stopGradientBlocksTheFlow() {
  let x = Tensor(shape: [2], scalars: [1.0, 2.0], requiresGradient: true)
  let tape = Tape()
  let y = tape.record { (x * x.detached()).sum() }  // d/dx = x (not 2x)
  #expect(tape.gradients(of: y)[x]!.scalars == [1.0, 2.0])
}

@Test func valueAndGradientsGivesZerosForUnusedParameters() {
  let a = Tensor(shape: [2], scalars: [1.0, 2.0], requiresGradient: true)
  let unused = Tensor(shape: [3], scalars: [1.0, 2.0, 3.0], requiresGradient: true)
  let (value, gradients) = valueAndGradients(of: [a, unused]) { (a * a).sum() }
  #expect(value.item == 5)
  #expect(gradients[0].scalars == [2.0, 4.0])
  #expect(gradients[1].scalars == [0.0, 0.0, 0.0])
}

@Test func aVectorJacobianProductOfTheWrongShapeStopsBackward() async throws {
  await #expect(processExitsWith: .failure) {
    let x = Tensor(shape: [2], scalars: [1.0, 2.0], requiresGradient: true)
    let tape = Tape()
    let y = tape.record { x.sum().recorded((x, { g in g })) }  // wrong: shape [] for [2]
    _ = tape.gradients(of: y)
  }
}

@Test func gradientsOfFloat32AndFloat64AgreeToFloat32Precision() {
  var generator = SeededGenerator(seed: 9)
  let w64 = Tensor.normal([4, 3], dtype: .float64, generator: &generator)
  let x64 = Tensor.normal([6, 4], dtype: .float64, generator: &generator)
  func gradient(_ dtype: DType) -> [Double] {
    let w = w64.converted(to: dtype)
    w.requiresGradient = true
    let x = x64.converted(to: dtype)
    let tape = Tape()
    let loss = tape.record {
      crossEntropy(logits: gelu(matmul(x, w)), targets: [0, 1, 2, 0, 1, 2])
    }
    return tape.gradients(of: loss)[w]!.scalars
  }
  let single = gradient(.float32)
  let double = gradient(.float64)
  for (a, b) in zip(single, double) { #expect(abs(a - b) < 1e-5) }
}

@Test func straightThroughHasTheValueOfOneAndTheGradientOfTheOther() {
  let x = Tensor(shape: [3], scalars: [0.5, -1.0, 2.0], requiresGradient: true)
  let tape = Tape()
  let y = tape.record {
    straightThrough(value: Tensor(shape: [3], scalars: [7.0, 8, 9]), gradientTo: x * x)
  }
  #expect(y.scalars == [7, 8, 9])
  let seed = Tensor(shape: [3], scalars: [1.0, 2, 3])
  #expect(tape.gradients(of: y, seed: seed)[x]!.scalars == [1.0, -4.0, 12.0])  // seed · 2x
}

/// Where a tensor's gradient gathers several products' contributions (a routed site's rows,
/// read by its router and its experts; a layer's input, read by q, k and v), each product
/// that finds a gradient there already adds itself into it as it is formed
/// (`Tape.Edge.adding`): the gradients keep the bits of contributions formed and then
/// added, in Float and Double, for rows of rank 2 and 3, a transposed A and B, and a weight
/// read twice.
@Test(arguments: [DType.float32, .float64])
func productsAddedIntoTheGradientSoFarKeepItsBits(dtype: DType) {
  var generator = SeededGenerator(seed: 12)
  func normal(_ shape: [Int]) -> Tensor {
    let tensor = Tensor.normal(shape, dtype: dtype, generator: &generator)
    tensor.requiresGradient = true
    return tensor
  }
  let (x, m) = (normal([2, 5, 7]), normal([7, 5]))
  let (w, u, v) = (normal([7, 4]), normal([3, 7]), normal([7, 6]))
  func run(fusing: Bool) -> (gradients: [[UInt64]], added: Int) {
    let tape = Tape()
    let loss = tape.record {
      let rows = tanh(matmul(x, w)).sum() + (matmul(x, u, transposeB: true) * 0.5).sum()
      let more = matmul(tanh(x), w).sum() + (x * x).sum()
      let columns =
        tanh(matmul(m, v, transposeA: true)).sum() + matmul(m, v, transposeA: true).sum()
      return rows + more + columns + tanh(matmul(x.reshaped([10, 7]), m)).sum()
    }
    let found = tape.gradients(of: loss, seed: nil, fusing: fusing)
    return (
      [x, m, w, u, v].map { found[$0]!.scalars.map(\.bitPattern) },
      tape.contributionsAddedAsFormed
    )
  }
  let (fused, unfused) = (run(fusing: true), run(fusing: false))
  #expect(fused.gradients == unfused.gradients)
  // Products that find a gradient there already: x's two (after its reshaped and
  // elementwise uses), m's last two of three, w's and v's second.
  #expect(
    fused.added == 6 && unfused.added == 0, "\(fused.added) and \(unfused.added) products added")
}

/// A product added into its input's gradient so far writes into that gradient's numbers in
/// place, but never into a tensor the caller holds: here the seed itself is x's gradient so
/// far (`x + x · W` passes it to x unchanged), and stays as it was, while x's gradient has
/// the bits of the contributions formed and then added.
@Test func aProductAddedInPlaceLeavesTheCallersSeedAsItWas() {
  var generator = SeededGenerator(seed: 13)
  let x = Tensor.normal([3, 4], dtype: .float32, generator: &generator)
  let w = Tensor.normal([4, 4], dtype: .float32, generator: &generator)
  let seed = Tensor.normal([3, 4], dtype: .float32, generator: &generator)
  x.requiresGradient = true
  let before = seed.scalars.map(\.bitPattern)
  let tape = Tape()
  let y = tape.record { x + matmul(x, w) }
  let fused = tape.gradients(of: y, seed: seed, fusing: true)[x]!.scalars.map(\.bitPattern)
  #expect(tape.contributionsAddedAsFormed == 1)
  let unfused = tape.gradients(of: y, seed: seed, fusing: false)[x]!.scalars.map(\.bitPattern)
  #expect(seed.scalars.map(\.bitPattern) == before)
  #expect(fused == unfused)
}
