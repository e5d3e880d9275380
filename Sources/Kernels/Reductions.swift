/// The sum of `count` contiguous elements, added in eight interleaved partial sums.
///
/// The order is fixed by the count alone, so it is deterministic, and it is both faster
/// and more accurate than one running sum.
@inline(__always)
func contiguousSum<T: KernelScalar>(_ x: UnsafePointer<T>, _ count: Int) -> T {
  var partial = SIMD8<T>()
  var i = 0
  while i + 8 <= count {
    partial += UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<T>.self)
    i += 8
  }
  var sum = partial.sum()
  while i < count {
    sum += x[i]
    i += 1
  }
  return sum
}

/// The dot product of two contiguous runs, in the same fixed order as `contiguousSum`.
@inline(__always)
func contiguousDot<T: KernelScalar>(_ x: UnsafePointer<T>, _ y: UnsafePointer<T>, _ count: Int) -> T
{
  var partial = SIMD8<T>()
  var i = 0
  while i + 8 <= count {
    partial.addProduct(
      UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<T>.self),
      UnsafeRawPointer(y + i).loadUnaligned(as: SIMD8<T>.self))
    i += 8
  }
  var sum = partial.sum()
  while i < count {
    sum += x[i] * y[i]
    i += 1
  }
  return sum
}

/// Sums over the middle axis of `x` viewed as `[outer, length, inner]`:
/// `out[o, i] = Σ_j x[o, j, i]`.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func sum<T: KernelScalar>(
  _ x: UnsafePointer<T>, outer: Int, length: Int, inner: Int,
  into out: UnsafeMutablePointer<T>
) { sumLoop(x, outer, length, inner, out) }

private func sumLoop<T: KernelScalar>(
  _ x: UnsafePointer<T>, _ outer: Int, _ length: Int, _ inner: Int, _ out: UnsafeMutablePointer<T>
) {
  if inner == 1 {
    // Row sums.
    forEachChunk(outer, grain: rowsPerChunk(length)) { rows in
      for o in rows { out[o] = contiguousSum(x + o * length, length) }
    }
    return
  }
  // Each output row accumulates `length` input rows in order; rows of the output are
  // independent, and so are columns, which is how the work is split.
  let columnsPerChunk = max(64, elementwiseGrain / max(1, length))
  let columnChunks = (inner + columnsPerChunk - 1) / columnsPerChunk
  forEachChunk(outer * columnChunks, grain: 1) { units in
    for unit in units {
      let o = unit / columnChunks
      let first = (unit % columnChunks) * columnsPerChunk
      let columns = min(columnsPerChunk, inner - first)
      let destination = out + o * inner + first
      destination.update(repeating: 0, count: columns)
      for j in 0..<length {
        let source = x + (o * length + j) * inner + first
        for i in 0..<columns { destination[i] += source[i] }
      }
    }
  }
}

/// The maximum over the middle axis of `x` viewed as `[outer, length, inner]`, and the
/// index `j` where it is first reached (ties go to the lower index).
@_specialize(where T == Float)
@_specialize(where T == Double)
public func max<T: KernelScalar>(
  _ x: UnsafePointer<T>, outer: Int, length: Int, inner: Int,
  into values: UnsafeMutablePointer<T>, indices: UnsafeMutablePointer<Int>
) { maxLoop(x, outer, length, inner, values, indices) }

private func maxLoop<T: KernelScalar>(
  _ x: UnsafePointer<T>, _ outer: Int, _ length: Int, _ inner: Int,
  _ values: UnsafeMutablePointer<T>, _ indices: UnsafeMutablePointer<Int>
) {
  precondition(length > 0, "max over an empty axis")
  forEachChunk(outer * inner, grain: max(1, elementwiseGrain / length)) { outputs in
    for output in outputs {
      let o = output / inner
      let i = output % inner
      let base = x + o * length * inner + i
      var best = base[0]
      var index = 0
      for j in 1..<length where base[j * inner] > best {
        best = base[j * inner]
        index = j
      }
      values[output] = best
      indices[output] = index
    }
  }
}
