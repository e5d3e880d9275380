/// RMSNorm of each row: `y = x · r · w` with `r = 1 / √(mean(x²) + ε)`, as in Llama.
/// Writes each row's `r` to `inverseRMS` for the backward pass.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func rmsNormRows<T: KernelScalar>(
  _ x: UnsafePointer<T>, weight: UnsafePointer<T>, epsilon: Double, rows: Int, columns: Int,
  into y: UnsafeMutablePointer<T>, inverseRMS: UnsafeMutablePointer<T>
) { rmsNormLoop(x, weight, epsilon, rows, columns, y, inverseRMS) }

/// Backward of `rmsNormRows` given the gradient `g` of `y`:
/// `dx = r · (g ⊙ w) − x · r³ · mean(g ⊙ w ⊙ x)` per row, and `dw = Σ_rows g ⊙ x · r`.
/// `dx` or `dWeight` may be nil when not needed.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func rmsNormRowsBackward<T: KernelScalar>(
  _ x: UnsafePointer<T>, weight: UnsafePointer<T>, inverseRMS: UnsafePointer<T>,
  gradient g: UnsafePointer<T>, rows: Int, columns: Int,
  dx: UnsafeMutablePointer<T>?, dWeight: UnsafeMutablePointer<T>?
) { rmsNormBackwardLoop(x, weight, inverseRMS, g, rows, columns, dx, dWeight) }

private func rmsNormLoop<T: KernelScalar>(
  _ x: UnsafePointer<T>, _ w: UnsafePointer<T>, _ epsilon: Double, _ rows: Int, _ columns: Int,
  _ y: UnsafeMutablePointer<T>, _ inverseRMS: UnsafeMutablePointer<T>
) {
  forEachChunk(rows, grain: rowsPerChunk(columns)) { range in
    for row in range {
      let x = x + row * columns
      let y = y + row * columns
      let r = 1 / (contiguousDot(x, x, columns) / T(columns) + T(epsilon)).squareRoot()
      inverseRMS[row] = r
      for c in 0..<columns { y[c] = x[c] * r * w[c] }
    }
  }
}

private func rmsNormBackwardLoop<T: KernelScalar>(
  _ x: UnsafePointer<T>, _ w: UnsafePointer<T>, _ inverseRMS: UnsafePointer<T>,
  _ g: UnsafePointer<T>, _ rows: Int, _ columns: Int,
  _ dx: UnsafeMutablePointer<T>?, _ dWeight: UnsafeMutablePointer<T>?
) {
  let grain = rowsPerChunk(columns)
  let chunks = (rows + grain - 1) / grain
  // Each chunk of rows adds its share of dw into its own partial row; the partials are
  // then added in chunk order, so dw does not depend on the thread count.
  Scratch.with(T.self, count: max(1, chunks * columns)) { partials in
    forEachChunk(rows, grain: grain) { range in
      let partial = partials + (range.lowerBound / grain) * columns
      partial.update(repeating: 0, count: columns)
      for row in range {
        let x = x + row * columns
        let g = g + row * columns
        let r = inverseRMS[row]
        if let dx {
          let dx = dx + row * columns
          var dot = TripleDotStep(g: g, w: w, x: x)
          forEachVector(in: 0..<columns, &dot)
          let correction = r * r * r * dot.partialSums.sum() / T(columns)
          for c in 0..<columns { dx[c] = r * g[c] * w[c] - x[c] * correction }
        }
        // (Only when dw is wanted: the base's RMSNorms in a mixture are frozen.)
        if dWeight != nil {
          for c in 0..<columns { partial[c] += g[c] * x[c] * r }
        }
      }
    }
    guard let dWeight else { return }
    dWeight.update(repeating: 0, count: columns)
    for chunk in 0..<chunks {
      for c in 0..<columns { dWeight[c] += partials[chunk * columns + c] }
    }
  }
}

/// 16 terms of `Σ g·w·x`, added lane by lane into `partialSums`.
private struct TripleDotStep<T: KernelScalar>: VectorStep {
  let g: UnsafePointer<T>
  let w: UnsafePointer<T>
  let x: UnsafePointer<T>
  var partialSums = SIMD16<T>()

  @inline(__always) mutating func callAsFunction(_ i: Int, lanes: Int) {
    partialSums +=
      loadVector(g + i, count: lanes) * loadVector(w + i, count: lanes)
      * loadVector(x + i, count: lanes)
  }
}
