/// One expert's columns among a mixture's stacked ranks (`x · A_allᵀ`, `[tokens, Σ ranks]`):
/// columns `columns` are expert `expert`'s, whose LoRA scale is `scale`.
public struct RankColumns: Equatable, Sendable {
  /// The expert's index among the mixture's experts (its column of the routing weights).
  public let expert: Int
  /// The expert's columns among the stacked ranks.
  public let columns: Range<Int>
  /// The expert's scale s_e (`alpha / rank`).
  public let scale: Double

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
  forEachChunk(rows, grain: rowsPerChunk(width)) { range in
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
  forEachChunk(rows, grain: rowsPerChunk(width)) { range in
    for t in range {
      let (hRow, gRow) = (h + t * width, g + t * width)
      if let dWeights { (dWeights + t * experts).update(repeating: 0, count: experts) }
      for block in ranks {
        let scale = T(block.scale)
        if let dh {
          let factor = w[t * experts + block.expert] * scale
          for j in block.columns { dh[t * width + j] = gRow[j] * factor }
        }
        if let dWeights {
          var sum: T = 0
          for j in block.columns { sum.addProduct(gRow[j] * hRow[j], scale) }
          dWeights[t * experts + block.expert] = sum
        }
      }
    }
  }
}
