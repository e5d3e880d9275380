/// Softmax of each row: `y[r, c] = exp(x[r, c] − m) / Σ_c' exp(x[r, c'] − m)` with `m` the
/// row's maximum, so no exponent overflows. Rows are contiguous runs of `columns`.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func softmaxRows<T: KernelScalar>(
  _ x: UnsafePointer<T>, into y: UnsafeMutablePointer<T>, rows: Int, columns: Int
) { softmaxLoop(x, y, rows, columns, log: false) }

/// Log-softmax of each row: `y[r, c] = x[r, c] − m − log Σ_c' exp(x[r, c'] − m)`.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func logSoftmaxRows<T: KernelScalar>(
  _ x: UnsafePointer<T>, into y: UnsafeMutablePointer<T>, rows: Int, columns: Int
) { softmaxLoop(x, y, rows, columns, log: true) }

/// Backward of `softmaxRows`, given its output `y` and the gradient `g` of `y`:
/// `dx = y ⊙ (g − ⟨g, y⟩)` row by row.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func softmaxRowsBackward<T: KernelScalar>(
  _ y: UnsafePointer<T>, gradient g: UnsafePointer<T>,
  into dx: UnsafeMutablePointer<T>, rows: Int, columns: Int
) { softmaxBackwardLoop(y, g, dx, rows, columns, log: false) }

/// Backward of `logSoftmaxRows`, given its output `y` and the gradient `g` of `y`:
/// `dx = g − exp(y) · Σ g` row by row.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func logSoftmaxRowsBackward<T: KernelScalar>(
  _ y: UnsafePointer<T>, gradient g: UnsafePointer<T>,
  into dx: UnsafeMutablePointer<T>, rows: Int, columns: Int
) { softmaxBackwardLoop(y, g, dx, rows, columns, log: true) }

/// `y[i] = exp(x[i] − shift)` for a contiguous run, 16 lanes at a time.
@inline(__always)
func exponentiate<T: KernelScalar>(
  _ x: UnsafePointer<T>, minus shift: T, into y: UnsafeMutablePointer<T>, count: Int
) {
  var step = ExponentiateStep(x: x, shift: shift, y: y)
  forEachVector(in: 0..<count, &step)
}

/// 16 elements of `exponentiate`.
private struct ExponentiateStep<T: KernelScalar>: VectorStep {
  let x: UnsafePointer<T>
  let shift: T
  let y: UnsafeMutablePointer<T>

  @inline(__always) func callAsFunction(_ i: Int, lanes: Int) {
    storeVector(T.exp(loadVector(x + i, count: lanes) - shift), y + i, count: lanes)
  }
}

/// The maximum of a contiguous, non-empty run.
@inline(__always)
func contiguousMax<T: KernelScalar>(_ x: UnsafePointer<T>, _ count: Int) -> T {
  var best = x[0]
  for i in 1..<count where x[i] > best { best = x[i] }
  return best
}

private func softmaxLoop<T: KernelScalar>(
  _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, _ rows: Int, _ columns: Int, log: Bool
) {
  guard columns > 0 else { return }
  forEachChunk(rows, grain: rowsPerChunk(columns)) { range in
    for r in range {
      let x = x + r * columns
      let y = y + r * columns
      let m = contiguousMax(x, columns)
      exponentiate(x, minus: m, into: y, count: columns)
      let total = contiguousSum(y, columns)
      if log {
        let shift = m + T.log(total)
        for c in 0..<columns { y[c] = x[c] - shift }
      } else {
        let scale = 1 / total
        for c in 0..<columns { y[c] *= scale }
      }
    }
  }
}

private func softmaxBackwardLoop<T: KernelScalar>(
  _ y: UnsafePointer<T>, _ g: UnsafePointer<T>, _ dx: UnsafeMutablePointer<T>,
  _ rows: Int, _ columns: Int, log: Bool
) {
  guard columns > 0 else { return }
  forEachChunk(rows, grain: rowsPerChunk(columns)) { range in
    for r in range {
      let y = y + r * columns
      let g = g + r * columns
      let dx = dx + r * columns
      if log {
        let total = contiguousSum(g, columns)
        exponentiate(y, minus: 0, into: dx, count: columns)
        for c in 0..<columns { dx[c] = g[c] - dx[c] * total }
      } else {
        let dot = contiguousDot(g, y, columns)
        for c in 0..<columns { dx[c] = y[c] * (g[c] - dot) }
      }
    }
  }
}
