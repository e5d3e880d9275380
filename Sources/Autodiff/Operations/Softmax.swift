// Softmax, log-softmax and cross-entropy, computed with the maximum subtracted first so
// no exponent overflows.

extension Tensor {
  /// `exp(x) / Σ exp(x)` along `axis`. Backward: `dx = y ⊙ (g − Σ g ⊙ y)`.
  public func softmax(axis: Int = -1) -> Tensor {
    alongLastAxis(axis) { x in
      let y = x.softmaxOfRows(log: false)
      return y.recorded((x, { g in y.softmaxOfRowsBackward(gradient: g, log: false) }))
    }
  }

  /// `x − log Σ exp(x)` along `axis`. Backward: `dx = g − softmax(x) · Σ g`.
  public func logSoftmax(axis: Int = -1) -> Tensor {
    alongLastAxis(axis) { x in
      let y = x.softmaxOfRows(log: true)
      return y.recorded((x, { g in y.softmaxOfRowsBackward(gradient: g, log: true) }))
    }
  }

  /// Applies a last-axis operation along `axis`, moving that axis last and back.
  private func alongLastAxis(_ axis: Int, _ operation: (Tensor) -> Tensor) -> Tensor {
    let axis = Shape.normalize(axis: axis, rank: rank)
    if axis == rank - 1 { return operation(self) }
    return operation(transposed(axis, -1)).transposed(axis, -1)
  }
}

/// The mean cross-entropy of `logits` (`[..., classes]`) against `targets` (one class per
/// row, row-major), over the rows where `mask` is true (every row if nil).
///
/// Per row, `loss = log Σ_c exp(logits[c]) − logits[target]`. Rows the mask leaves out
/// contribute nothing and get zero gradient; with no row counted the loss is 0. Backward:
/// `(softmax(logits) − onehot(target)) / counted` on counted rows.
public func crossEntropy(logits: Tensor, targets: [Int], mask: [Bool]? = nil) -> Tensor {
  let rows = logits.count / Swift.max(1, logits.shape.last ?? 1)
  precondition(targets.count == rows, "\(targets.count) targets for \(rows) rows of logits")
  precondition(mask == nil || mask!.count == rows, "mask of \(mask!.count) for \(rows) rows")
  let counts = mask ?? [Bool](repeating: true, count: rows)
  let weights = Tensor(shape: [rows], scalars: counts.map { $0 ? 1 : 0 }, dtype: logits.dtype)
  let counted = Double(counts.filter { $0 }.count)
  let (total, logSumExp) = logits.crossEntropySum(targets: targets, weights: weights)
  let loss = Tensor(counted > 0 ? total / counted : 0, dtype: logits.dtype)
  return loss.recorded(
    (
      logits,
      { g in
        logits.crossEntropyBackward(
          targets: targets, weights: weights, logSumExp: logSumExp,
          scale: counted > 0 ? g.item / counted : 0)
      }
    ))
}
