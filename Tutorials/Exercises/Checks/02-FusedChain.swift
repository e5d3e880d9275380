import Kernels
import Random

/// Lesson 02: a plain loop whose every element has the bits of the fast kernel's: one
/// chain of fused multiply-adds over k, in order, from zero. Checked bit for bit against
/// `Kernels.matmul` on odd shapes.
public func checkFusedChain(
  _ multiply: (_ a: [Float], _ b: [Float], _ m: Int, _ k: Int, _ n: Int) -> [Float]
) -> ExerciseResult {
  var result = ExerciseResult("the fast kernel's bits from a plain loop (lesson 02)")
  var generator = SeededGenerator(seed: 2)
  for (m, k, n) in [(1, 3, 17), (3, 17, 33), (17, 65, 3), (33, 129, 65)] {
    let a = (0..<m * k).map { _ in Float(generator.nextNormal()) }
    let b = (0..<k * n).map { _ in Float(generator.nextNormal()) }
    var fast = [Float](repeating: 0, count: m * n)
    a.withUnsafeBufferPointer { a in
      b.withUnsafeBufferPointer { b in
        fast.withUnsafeMutableBufferPointer { c in
          matmul(
            a.baseAddress!, b.baseAddress!, into: c.baseAddress!, MatmulShape(m: m, n: n, k: k))
        }
      }
    }
    let yours = multiply(a, b, m, k, n)
    let differing =
      yours.count == fast.count
      ? zip(yours, fast).count { $0.bitPattern != $1.bitPattern } : fast.count
    result.expect(
      differing == 0,
      "\(m)×\(k) · \(k)×\(n): \(differing) of \(m * n) elements differ in their bits")
  }
  return result
}
