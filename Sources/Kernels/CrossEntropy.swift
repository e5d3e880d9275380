/// Cross-entropy of each row of logits against a target class, weighted.
///
/// For row `r` with weight `w_r`: `loss_r = logsumexp(logits_r) − logits_r[target_r]`.
/// Returns `Σ_r w_r · loss_r` (rows with weight 0 are skipped: their target is never read)
/// and writes each row's log-sum-exp for the backward pass.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func crossEntropyRows<T: KernelScalar>(
  _ logits: UnsafePointer<T>, targets: UnsafePointer<Int>, weights: UnsafePointer<T>,
  rows: Int, classes: Int, logSumExp: UnsafeMutablePointer<T>
) -> Double { crossEntropyLoop(logits, targets, weights, rows, classes, logSumExp) }

/// Backward of `crossEntropyRows` scaled by `scale`:
/// `dlogits[r, c] = scale · w_r · (softmax(logits_r)[c] − [c = target_r])`.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func crossEntropyRowsBackward<T: KernelScalar>(
  _ logits: UnsafePointer<T>, targets: UnsafePointer<Int>, weights: UnsafePointer<T>,
  logSumExp: UnsafePointer<T>, scale: Double, rows: Int, classes: Int,
  into dlogits: UnsafeMutablePointer<T>
) { crossEntropyBackwardLoop(logits, targets, weights, logSumExp, scale, rows, classes, dlogits) }

private func crossEntropyLoop<T: KernelScalar>(
  _ logits: UnsafePointer<T>, _ targets: UnsafePointer<Int>, _ weights: UnsafePointer<T>,
  _ rows: Int, _ classes: Int, _ logSumExp: UnsafeMutablePointer<T>
) -> Double {
  precondition(classes > 0, "cross-entropy over zero classes")
  // Each chunk of rows writes its partial sum; the partials are added in chunk order, so
  // the total does not depend on the thread count.
  let grain = rowsPerChunk(classes)
  let chunks = (rows + grain - 1) / grain
  return Scratch.with(Double.self, count: max(1, chunks)) { partials in
    forEachChunk(rows, grain: grain) { range in
      var total = 0.0
      // Room for one row of exponentials.
      let exponentials = UnsafeMutablePointer<T>.allocate(capacity: classes)
      defer { exponentials.deallocate() }
      for r in range {
        let row = logits + r * classes
        let m = contiguousMax(row, classes)
        exponentiate(row, minus: m, into: exponentials, count: classes)
        let lse = m + T.log(contiguousSum(exponentials, classes))
        logSumExp[r] = lse
        if weights[r] != 0 {
          let target = targets[r]
          precondition(target >= 0 && target < classes, "target \(target) out of 0..<\(classes)")
          total += Double(weights[r]) * Double(lse - row[target])
        }
      }
      partials[range.lowerBound / grain] = total
    }
    var total = 0.0
    for chunk in 0..<chunks { total += partials[chunk] }
    return total
  }
}

private func crossEntropyBackwardLoop<T: KernelScalar>(
  _ logits: UnsafePointer<T>, _ targets: UnsafePointer<Int>, _ weights: UnsafePointer<T>,
  _ logSumExp: UnsafePointer<T>, _ scale: Double, _ rows: Int, _ classes: Int,
  _ dlogits: UnsafeMutablePointer<T>
) {
  forEachChunk(rows, grain: rowsPerChunk(classes)) { range in
    for r in range {
      let out = dlogits + r * classes
      let w = T(scale) * weights[r]
      if w == 0 {
        out.update(repeating: 0, count: classes)
        continue
      }
      exponentiate(logits + r * classes, minus: logSumExp[r], into: out, count: classes)
      for c in 0..<classes { out[c] *= w }
      out[targets[r]] -= w
    }
  }
}
