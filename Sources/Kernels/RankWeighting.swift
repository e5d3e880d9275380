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
    for t in range {
      let (hRow, yRow) = (h + t * width, y + t * width)
      for block in ranks {
        let factor = w[t * experts + block.expert] * T(block.scale)
        for j in block.columns { yRow[j] = hRow[j] * factor }
      }
    }
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
    if let dh {
      for t in range {
        let (gRow, dhRow) = (g + t * width, dh + t * width)
        for block in ranks {
          let factor = w[t * experts + block.expert] * T(block.scale)
          for j in block.columns { dhRow[j] = gRow[j] * factor }
        }
      }
    }
    guard let dWeights else { return }
    for t in range { (dWeights + t * experts).update(repeating: 0, count: experts) }
    // Four rows at a time: one row's chain is a run of multiply-adds each waiting for the
    // last, and four rows' chains side by side do not wait for each other (row by row, the
    // backward took 2.2 ms of the bench mixture's step, 16 sites of 2,048 rows of 48; so,
    // 1.2 to 1.3 ms, AMD EPYC Zen 3, `--profile`). Each chain is its row's own, in order.
    let fours = range.lowerBound + (range.count / 4) * 4
    for t in stride(from: range.lowerBound, to: fours, by: 4) {
      let (g0, g1, g2, g3) = (
        g + t * width, g + (t + 1) * width, g + (t + 2) * width, g + (t + 3) * width
      )
      let (h0, h1, h2, h3) = (
        h + t * width, h + (t + 1) * width, h + (t + 2) * width, h + (t + 3) * width
      )
      for block in ranks {
        let scale = T(block.scale)
        var (s0, s1, s2, s3): (T, T, T, T) = (0, 0, 0, 0)
        for j in block.columns {
          s0.addProduct(g0[j] * h0[j], scale)
          s1.addProduct(g1[j] * h1[j], scale)
          s2.addProduct(g2[j] * h2[j], scale)
          s3.addProduct(g3[j] * h3[j], scale)
        }
        let e = t * experts + block.expert
        (dWeights[e], dWeights[e + experts], dWeights[e + 2 * experts], dWeights[e + 3 * experts]) =
          (s0, s1, s2, s3)
      }
    }
    for t in fours..<range.upperBound {
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
