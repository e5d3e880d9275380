import Foundation
import Random
import Testing

@testable import Autodiff

@Test func broadcastingFollowsNumPy() {
  #expect(Shape.broadcast([2, 1, 4], [3, 1]) == [2, 3, 4])
  #expect(Shape.broadcast([], [5]) == [5])
  #expect(Shape.broadcastStrides(of: [3, 1], to: [2, 3, 4]) == [0, 1, 0])
  let x = Tensor(shape: [2, 3], scalars: [1.0, 2, 3, 4, 5, 6])
  #expect(x.sumToShape([3]).scalars == [5, 7, 9])
  #expect(x.sumToShape([2, 1]).scalars == [6, 15])
  #expect((x + Tensor(shape: [3], scalars: [10.0, 20, 30])).scalars == [11, 22, 33, 14, 25, 36])
}

@Test func softmaxAndCrossEntropyStayFiniteForHugeLogits() {
  let logits = Tensor(
    shape: [2, 3], scalars: [1000.0, 1001, -1000, 1e30, 0, -1e30], requiresGradient: true)
  #expect(logits.softmax().scalars.allSatisfy { $0.isFinite })
  #expect(logits.logSoftmax().scalars.allSatisfy { $0.isFinite })
  let tape = Tape()
  let loss = tape.record { crossEntropy(logits: logits, targets: [1, 0]) }
  #expect(loss.item.isFinite)
  #expect(tape.gradients(of: loss)[logits]!.scalars.allSatisfy { $0.isFinite })
}

@Test func crossEntropyWithNothingCountedIsZeroWithZeroGradient() {
  let logits = Tensor(shape: [2, 3], scalars: [1.0, 2, 3, 4, 5, 6], requiresGradient: true)
  let tape = Tape()
  let loss = tape.record { crossEntropy(logits: logits, targets: [0, 99], mask: [false, false]) }
  #expect(loss.item == 0)
  #expect(tape.gradients(of: loss)[logits]!.scalars == [0, 0, 0, 0, 0, 0])
}

@Test func crossEntropyMatchesItsDefinition() {
  let logits = Tensor(shape: [2, 3], scalars: [0.5, -1, 2, 0, 0, 0])
  let loss = crossEntropy(logits: logits, targets: [2, 1], mask: [true, true]).item
  let first = Foundation.log(Foundation.exp(0.5) + Foundation.exp(-1) + Foundation.exp(2)) - 2
  let second = Foundation.log(3.0)
  #expect(abs(loss - (first + second) / 2) < 1e-12)
}

@Test func selectNeverLeaksTheSideNotChosen() {
  let a = Tensor(shape: [3], scalars: [1.0, 2, 3], requiresGradient: true)
  let b = Tensor(shape: [3], scalars: [Double.infinity, .nan, -.infinity], requiresGradient: true)
  let condition = Tensor(shape: [3], scalars: [1.0, 1, 1])
  let tape = Tape()
  let y = tape.record { select(condition, a, b).sum() }
  #expect(y.item == 6)
  let gradients = tape.gradients(of: y)
  #expect(gradients[a]!.scalars == [1, 1, 1])
  #expect(gradients[b]!.scalars == [0, 0, 0])
}

@Test func topKBreaksTiesByLowerIndexAndMaxRoutesToTheFirst() {
  let x = Tensor(shape: [1, 5], scalars: [2.0, 5, 5, 1, 5], requiresGradient: true)
  let (values, indices) = x.topK(3)
  #expect(values.scalars == [5, 5, 5])
  #expect(indices == [1, 2, 4])
  let tape = Tape()
  let m = tape.record { x.max() }
  #expect(tape.gradients(of: m)[x]!.scalars == [0, 1, 0, 0, 0])
}

@Test func reshapeAndDetachShareStorageButAssignDoesNotLeak() {
  let x = Tensor(shape: [2, 2], scalars: [1.0, 2, 3, 4])
  let view = x.reshaped([4])
  let frozen = x.detached()
  x.assign(.float64([9, 9, 9, 9]))
  #expect(view.scalars == [1, 2, 3, 4])
  #expect(frozen.scalars == [1, 2, 3, 4])
}

/// The fused renormalised top-k keeps the bits of its primitive reference, values, chosen
/// columns and gradient, in Float: rows narrower than eight (each in one vector) and wider
/// than a vector of the row sum, a tie (to the lower index), negative entries (a dropped one
/// gives −0), k from 1 to 3; five rows, or 2,049 cut into tasks on all threads.
@Test(arguments: [(5, 6, 1), (5, 6, 2), (5, 11, 3), (5, 3, 2), (2049, 6, 2), (2049, 7, 3)])
func renormalizedTopKKeepsTheReferencesBits(rows: Int, columns: Int, k: Int) {
  var generator = SeededGenerator(seed: UInt64(columns * 10 + k))
  var values = (0..<rows * columns).map { _ in Float(3 * generator.nextUniform() - 1) }
  values[1] = values[0]
  let weights = (0..<rows * columns).map { _ in Float(4 * generator.nextUniform() - 2) }
  func run(_ choose: (Tensor) -> (values: Tensor, indices: [Int])) -> ([Int], [[UInt64]]) {
    let x = Tensor(shape: [rows, columns], scalars: values.map(Double.init), dtype: .float32)
    x.requiresGradient = true
    let tape = Tape()
    var chosen: (values: Tensor, indices: [Int])? = nil
    let loss = tape.record {
      chosen = choose(x)
      let w = Tensor(shape: [rows, columns], scalars: weights.map(Double.init), dtype: .float32)
      return (chosen!.values * w).sum()
    }
    let gradient = tape.gradients(of: loss)[x]!
    return (
      chosen!.indices, [chosen!.values.scalars, gradient.scalars].map { $0.map(\.bitPattern) }
    )
  }
  let fused = run { $0.renormalizedTopK(k) }
  let reference = run { $0.renormalizedTopKReference(k) }
  let sameColumns = fused.0 == reference.0
  #expect(sameColumns)
  let differing = zip(fused.1.joined(), reference.1.joined()).count { $0 != $1 }
  #expect(differing == 0, "\(differing) numbers differ from the reference's")
  // One kept entry renormalised is 1 whatever it was: no gradient at all; with more, some.
  let gradient = fused.1[1].map { Double(bitPattern: $0) }
  if k == 1 {
    #expect(gradient.allSatisfy { $0 == 0 }, "a lone kept entry has no gradient")
  } else {
    #expect(gradient.contains { $0 != 0 }, "some gradient reaches the kept entries")
  }
}
