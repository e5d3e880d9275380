/// One expert's columns among a mixture's stacked ranks (`x · A_allᵀ`, `[tokens, Σ ranks]`):
/// columns `columns` are expert `expert`'s, whose LoRA scale is `scale`.
public struct RankColumns: Equatable, Sendable {
  /// The expert's index among the mixture's experts (its column of the routing weights).
  public let expert: Int
  /// The expert's columns among the stacked ranks.
  public let columns: Range<Int>
  /// The expert's scale s_e (`alpha / rank`).
  public let scale: Double

  /// Expert `expert`'s `columns`, scaled by `scale`.
  public init(expert: Int, columns: Range<Int>, scale: Double) {
    (self.expert, self.columns, self.scale) = (expert, columns, scale)
  }
}

/// `y[t, j] = h[t, j] · (w[t, e] · s_e)` for each expert's `columns` j: the stacked ranks
/// `h` (`[rows, width]`) weighted by the routing weights `w` (`[rows, experts]`) and scaled.
/// Each factor `w · s` is rounded first, then the product: the bits of `h ⊙ (w · S)` with
/// S's zeros (`weightedRanksReference` in LoRAMixer).
@_specialize(where T == Float)
@_specialize(where T == Double)
public func weightRankColumns<T: KernelScalar>(
  _ h: UnsafePointer<T>, weights w: UnsafePointer<T>, ranks: [RankColumns], rows: Int,
  width: Int, experts: Int, into y: UnsafeMutablePointer<T>
) {
  forEachEvenChunk(rows, grain: rowsPerChunk(width)) { range in
    weighColumns(h, w, ranks, range, width, experts, into: y)
  }
}

/// Backward of `weightRankColumns`, given the gradient `g` of `y`: `dh[t, j] = g[t, j] ·
/// (w[t, e] · s_e)`, and `dw[t, e] = Σ_j (g[t, j] · h[t, j]) · s_e` over expert e's columns,
/// one fused multiply-add chain from zero in column order (so the bits of `(g ⊙ h) · Sᵀ`,
/// whose other terms add exact zeros); zero for an expert without columns. Either output
/// may be nil when not needed.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func weightRankColumnsBackward<T: KernelScalar>(
  _ h: UnsafePointer<T>, weights w: UnsafePointer<T>, gradient g: UnsafePointer<T>,
  ranks: [RankColumns], rows: Int, width: Int, experts: Int,
  dh: UnsafeMutablePointer<T>?, dWeights: UnsafeMutablePointer<T>?
) {
  forEachEvenChunk(rows, grain: rowsPerChunk(width)) { range in
    if let dh { weighColumns(g, w, ranks, range, width, experts, into: dh) }
    guard let dWeights else { return }
    for t in range { (dWeights + t * experts).update(repeating: 0, count: experts) }
    // Eight rows at a time, a row to a vector lane: the rows' products g ⊙ h, turned by 8 × 8
    // blocks (`transposeBlock`) so that a column of the eight rows is one vector, then each
    // expert's chain over its columns, eight rows' chains at once, each lane its own row's
    // in column order. In scalar chains, four rows side by side, the backward took 0.78 to
    // 0.84 ms of the bench mixture's step (16 sites of 2,048 rows of 48), 0.55 to 0.56 so
    // (AVX2 build on the AMD EPYC Zen 5, `--profile`, three runs each in turns; row by row,
    // 2.2 on the Zen 3). The rows left over go one at a time.
    let eights = range.lowerBound + (range.count / 8) * 8
    Scratch.with(T.self, count: 16 * width) { scratch in
      let (products, columns) = (scratch, scratch + 8 * width)  // [8, width], [width, 8]
      for t in stride(from: range.lowerBound, to: eights, by: 8) {
        // Eight rows of a row-major array are 8 · width numbers in a row: whole vectors.
        let (gRows, hRows) = (UnsafeRawPointer(g + t * width), UnsafeRawPointer(h + t * width))
        for j in stride(from: 0, to: 8 * width, by: 8) {
          let offset = j * MemoryLayout<T>.stride
          let product =
            gRows.loadUnaligned(fromByteOffset: offset, as: SIMD8<T>.self)
            * hRows.loadUnaligned(fromByteOffset: offset, as: SIMD8<T>.self)
          UnsafeMutableRawPointer(products + j).storeBytes(of: product, as: SIMD8<T>.self)
        }
        var first = 0
        while first + 8 <= width {
          transposeBlock(
            products + first, rowStride: width, into: columns + first * 8, targetRowStride: 8)
          first += 8
        }
        for j in first..<width {
          for r in 0..<8 { columns[j * 8 + r] = products[r * width + j] }
        }
        for block in ranks {
          let scale = SIMD8<T>(repeating: T(block.scale))
          var sums = SIMD8<T>()
          for j in block.columns {
            sums.addProduct(
              UnsafeRawPointer(columns + j * 8).loadUnaligned(as: SIMD8<T>.self), scale)
          }
          for r in 0..<8 { dWeights[(t + r) * experts + block.expert] = sums[r] }
        }
      }
    }
    for t in eights..<range.upperBound {
      let (gRow, hRow) = (g + t * width, h + t * width)
      for block in ranks {
        let scale = T(block.scale)
        var sum: T = 0
        for j in block.columns { sum.addProduct(gRow[j] * hRow[j], scale) }
        dWeights[t * experts + block.expert] = sum
      }
    }
  }
}

/// Rows `rows` of `source` (`[rows, width]`) with each expert's columns times `w[t, e] · s_e`,
/// into `target`: the weighting of h forward, and of its gradient g backward (`dh`).
@inline(__always)
private func weighColumns<T: KernelScalar>(
  _ source: UnsafePointer<T>, _ w: UnsafePointer<T>, _ ranks: [RankColumns], _ rows: Range<Int>,
  _ width: Int, _ experts: Int, into target: UnsafeMutablePointer<T>
) {
  for t in rows {
    let (from, to) = (source + t * width, target + t * width)
    for block in ranks {
      let factor = w[t * experts + block.expert] * T(block.scale)
      scaleRun(
        from + block.columns.lowerBound, by: factor, into: to + block.columns.lowerBound,
        count: block.columns.count)
    }
  }
}

/// `target[j] = source[j] · factor` for a run of `count`: eight at a time, then one by one.
/// A run is an expert's columns, as few as its rank (8 in the bench mixture), too short
/// for the compiler's own vector loop, which it left to scalar code: the weighting took
/// 0.27 ms forward and 0.56 to 0.62 backward of the bench mixture's step so, 0.22 to 0.23
/// and 0.50 to 0.54 now (AVX2 build on the AMD EPYC Zen 5, `--profile`, in turns).
@inline(__always)
private func scaleRun<T: KernelScalar>(
  _ source: UnsafePointer<T>, by factor: T, into target: UnsafeMutablePointer<T>, count: Int
) {
  var j = 0
  while j + 8 <= count {
    let v = UnsafeRawPointer(source + j).loadUnaligned(as: SIMD8<T>.self) * factor
    UnsafeMutableRawPointer(target + j).storeBytes(of: v, as: SIMD8<T>.self)
    j += 8
  }
  while j < count {
    target[j] = source[j] * factor
    j += 1
  }
}
