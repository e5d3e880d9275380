import Foundation

/// The layout of per-head vectors: `[batch, length, heads, size]`, row-major. This is a
/// projection's output `[batch, length, heads × size]` seen head by head.
public struct HeadLayout: Sendable, Equatable {
  /// Sequences.
  public var batch: Int
  /// Positions per sequence.
  public var length: Int
  /// Attention heads.
  public var heads: Int
  /// Scalars per head.
  public var size: Int

  /// A layout of `batch` sequences of `length` positions with `heads` heads of `size`.
  public init(batch: Int, length: Int, heads: Int, size: Int) {
    self.batch = batch
    self.length = length
    self.heads = heads
    self.size = size
  }

  /// Scalars in the whole tensor.
  public var count: Int { batch * length * heads * size }
  /// Scalars between one position and the next within a head.
  var rowStride: Int { heads * size }
  /// Where head `h` of sequence `b` starts.
  func offset(batch b: Int, head h: Int) -> Int { b * length * heads * size + h * size }
}

/// Rotary position embedding in the "rotate-half" layout of Hugging Face's Llama: within
/// each head of `size`, element `i` and element `i + size/2` are rotated together by the
/// angle `position · θ^(−2i/size)`. With `inverse`, rotates by the opposite angle, which is
/// the backward pass (a rotation's transpose is its inverse).
@_specialize(where T == Float)
@_specialize(where T == Double)
public func rotaryEmbedding<T: KernelScalar>(
  _ x: UnsafePointer<T>, layout: HeadLayout, theta: Double, inverse: Bool = false,
  into y: UnsafeMutablePointer<T>
) { rotaryLoop(x, layout, theta, inverse, y) }

private func rotaryLoop<T: KernelScalar>(
  _ x: UnsafePointer<T>, _ layout: HeadLayout, _ theta: Double, _ inverse: Bool,
  _ y: UnsafeMutablePointer<T>
) {
  precondition(layout.size % 2 == 0, "rotary embedding needs an even head size, got \(layout.size)")
  let half = layout.size / 2
  // cos and sin of every (position, frequency), computed in Double once.
  let angles = (0..<layout.length).flatMap { position in
    (0..<half).map { i in
      Double(position) * Foundation.pow(theta, -2 * Double(i) / Double(layout.size))
    }
  }
  let cosines = angles.map { T(Foundation.cos($0)) }
  let sines = angles.map { T(inverse ? -Foundation.sin($0) : Foundation.sin($0)) }
  let rows = layout.batch * layout.length
  cosines.withUnsafeBufferPointer { cosines in
    sines.withUnsafeBufferPointer { sines in
      forEachChunk(rows, grain: rowsPerChunk(layout.rowStride)) { range in
        for row in range {
          let position = row % layout.length
          let cos = cosines.baseAddress! + position * half
          let sin = sines.baseAddress! + position * half
          for head in 0..<layout.heads {
            let start = row * layout.rowStride + head * layout.size
            let x = x + start
            let y = y + start
            for i in 0..<half {
              let first = x[i]
              let second = x[i + half]
              y[i] = first * cos[i] - second * sin[i]
              y[i + half] = second * cos[i] + first * sin[i]
            }
          }
        }
      }
    }
  }
}
