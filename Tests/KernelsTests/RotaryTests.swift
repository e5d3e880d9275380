import Foundation
import Testing

@testable import Kernels

/// The rotation, eight pairs at a time where they fill vectors and one at a time after,
/// gives the bits of the plain formula on every pair, forward and inverse; a shorter
/// length after a longer one reads the first rows of the kept table.
@Test func rotaryEmbeddingGivesTheBitsOfOnePairAtATime() {
  for (size, length) in [(32, 5), (24, 7), (6, 3), (24, 4)] {
    let layout = HeadLayout(batch: 2, length: length, heads: 3, size: size)
    let x: [Float] = fill(layout.count, seed: 21)
    let half = size / 2
    for inverse in [false, true] {
      var y = [Float](repeating: 0, count: layout.count)
      rotaryEmbedding(x, layout: layout, theta: 10_000, inverse: inverse, into: &y)
      var expected = y
      for row in 0..<layout.batch * length {
        for head in 0..<layout.heads {
          for i in 0..<half {
            let angle = Double(row % length) * pow(10_000, -2 * Double(i) / Double(size))
            let (c, s) = (Float(cos(angle)), Float(inverse ? -sin(angle) : sin(angle)))
            let start = row * layout.heads * size + head * size
            let (first, second) = (x[start + i], x[start + i + half])
            expected[start + i] = first * c - second * s
            expected[start + i + half] = second * c + first * s
          }
        }
      }
      #expect(sameBits(y, expected), "size \(size), length \(length), inverse \(inverse)")
    }
  }
}
