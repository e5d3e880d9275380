import Foundation
import Synchronization

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
  let table = RotaryTable.of(length: layout.length, size: layout.size, theta: theta)
  let cosines = table.cosines.prefix(layout.length * half).map { T($0) }
  let sines = table.sines.prefix(layout.length * half).map { T(inverse ? -$0 : $0) }
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
            rotate(x + start, into: y + start, half: half, cos: cos, sin: sin)
          }
        }
      }
    }
  }
}

/// One head's rotation: `(x[i], x[i + half])` by the angle whose cosine and sine are
/// `cos[i]` and `sin[i]`. Eight pairs at a time where they fill vectors (the same
/// multiplications and subtraction lane by lane, so the same bits as one pair at a time):
/// the compiler does not vectorize the plain loop, whose x and y it cannot prove apart
/// (the bench model's mixture step spent 2.7% of its time here, at half = 16).
@inline(__always)
private func rotate<T: KernelScalar>(
  _ x: UnsafePointer<T>, into y: UnsafeMutablePointer<T>, half: Int, cos: UnsafePointer<T>,
  sin: UnsafePointer<T>
) {
  typealias V = SIMD8<T>
  func load(_ p: UnsafePointer<T>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }
  let lanes = V.scalarCount
  var i = 0
  while i + lanes <= half {
    let (first, second) = (load(x + i), load(x + i + half))
    let (c, s) = (load(cos + i), load(sin + i))
    let (a, b) = (first * c - second * s, second * c + first * s)
    UnsafeMutableRawPointer(y + i).storeBytes(of: a, as: V.self)
    UnsafeMutableRawPointer(y + i + half).storeBytes(of: b, as: V.self)
    i += lanes
  }
  while i < half {
    let first = x[i]
    let second = x[i + half]
    y[i] = first * cos[i] - second * sin[i]
    y[i + half] = second * cos[i] + first * sin[i]
    i += 1
  }
}

/// The cosines and sines of every (position, frequency) angle `position · θ^(−2i/size)`,
/// positions first, computed in Double and kept per (size, θ) for the longest length asked
/// so far (a shorter length reads the first rows): the bench model's step rotates eight
/// times, and computing them each time (pow, cos and sin in every call) took about 0.7% of
/// the mixture step's samples (`perf` on the AMD EPYC Zen 4).
struct RotaryTable: Sendable {
  let cosines: [Double]
  let sines: [Double]
  let length: Int

  private struct Key: Hashable {
    let size: Int
    let theta: Double
  }
  private static let cache = Mutex<[Key: RotaryTable]>([:])

  /// A table of at least `length` positions.
  static func of(length: Int, size: Int, theta: Double) -> RotaryTable {
    let key = Key(size: size, theta: theta)
    if let table = cache.withLock({ $0[key] }), table.length >= length { return table }
    let half = size / 2
    let angles = (0..<length).flatMap { position in
      (0..<half).map { i in
        Double(position) * Foundation.pow(theta, -2 * Double(i) / Double(size))
      }
    }
    let table = RotaryTable(
      cosines: angles.map(Foundation.cos), sines: angles.map(Foundation.sin), length: length)
    cache.withLock { cached in
      if (cached[key]?.length ?? 0) < length { cached[key] = table }
    }
    return table
  }
}
