// The two terms of a router's routing loss over a batch of `rows` routed tokens and
// `columns` experts, each in one pass with the bits of its primitive operations
// (`meanEntropyReference` and `balanceTermReference` in LoRAMixer).

/// The mean entropy of the rows, `−(1/rows) Σ_r Σ_c p[r, c] · L[r, c]`, with L the
/// log-softmax of the logits `z` (written to `logProbabilities` for the backward pass): as
/// `-(p * z.logSoftmax()).sum(axes: [-1]).mean()` computes it, each row's products summed by
/// `contiguousSum`, then the rows' sums, divided, negated. The rows' sums are shared among
/// the threads as a division's work each (a router's 2,048 rows of 6 in four chunks, not
/// one): on two threads 18.1 µs against 20.4 for the whole kernel (best of 2,000; AVX2
/// build, AMD EPYC Zen 5).
@_specialize(where T == Float)
@_specialize(where T == Double)
public func meanEntropyRows<T: KernelScalar>(
  _ p: UnsafePointer<T>, logits z: UnsafePointer<T>, rows: Int, columns: Int,
  logProbabilities: UnsafeMutablePointer<T>
) -> T {
  logSoftmaxRows(z, into: logProbabilities, rows: rows, columns: columns)
  return Scratch.with(T.self, count: rows) { rowSums in
    forEachEvenChunk(rows, grain: rowsPerChunk(columns, cost: 8)) { range in
      Scratch.with(T.self, count: columns) { products in
        for r in range {
          for c in 0..<columns {
            products[c] = p[r * columns + c] * logProbabilities[r * columns + c]
          }
          rowSums[r] = contiguousSum(products, columns)
        }
      }
    }
    return -(contiguousSum(rowSums, rows) / T(rows))
  }
}

/// Backward of `meanEntropyRows` given the gradient `g` of its value: with d = −g / rows,
/// `dp = d · L` and `dz` the log-softmax's backward of `d · p` (either may be nil when not
/// needed).
@_specialize(where T == Float)
@_specialize(where T == Double)
public func meanEntropyRowsBackward<T: KernelScalar>(
  _ p: UnsafePointer<T>, logProbabilities: UnsafePointer<T>, rows: Int, columns: Int,
  gradient g: T, dp: UnsafeMutablePointer<T>?, dz: UnsafeMutablePointer<T>?
) {
  let count = rows * columns
  let d = -g / T(rows)
  if let dp {
    forEachChunk(count, grain: elementwiseGrain) { range in
      for i in range { dp[i] = d * logProbabilities[i] }
    }
  }
  guard let dz else { return }
  Scratch.with(T.self, count: count) { dLog in
    forEachChunk(count, grain: elementwiseGrain) { range in
      for i in range { dLog[i] = d * p[i] }
    }
    logSoftmaxRowsBackward(
      logProbabilities, gradient: dLog, into: dz, rows: rows, columns: columns)
  }
}

/// The balance term counted by token, `experts · Σ_c mean_r(p[r, c]) · f[c]`, with `f`
/// each expert's share of the selections: as `(p.mean(axes: [0]) * f).sum() * experts`
/// computes it, each column summed row after row from zero, divided, times its share, and
/// the products summed by `contiguousSum`.
///
/// Rows of at most eight columns are summed a row to a vector: lane c adds column c, row
/// after row, as the plain loop does (the lanes past the row add numbers of the next rows,
/// unused), until a vector would read past the last row; a router's 2,048 rows of 6 took
/// 1.5 µs so, 5.5 number by number (best of 2,000, AVX2 build, AMD EPYC Zen 5).
@_specialize(where T == Float)
@_specialize(where T == Double)
public func balanceColumns<T: KernelScalar>(
  _ p: UnsafePointer<T>, rows: Int, columns: Int, shares f: UnsafePointer<T>, experts: T
) -> T {
  Scratch.with(T.self, count: columns) { products in
    products.update(repeating: 0, count: columns)
    var summed = 0
    if columns <= 8 {
      var sums = SIMD8<T>()
      while summed * columns + 8 <= rows * columns {
        sums += UnsafeRawPointer(p + summed * columns).loadUnaligned(as: SIMD8<T>.self)
        summed += 1
      }
      for c in 0..<columns { products[c] = sums[c] }
    }
    for r in summed..<rows {
      for c in 0..<columns { products[c] += p[r * columns + c] }
    }
    for c in 0..<columns { products[c] = products[c] / T(rows) * f[c] }
    return contiguousSum(products, columns) * experts
  }
}

/// Backward of `balanceColumns` given the gradient `g` of its value: every row's
/// `dp[r, c] = g · experts · f[c] / rows`.
///
/// The first row is written number by number, then copied in runs that double: a router's
/// 2,048 rows of 6 took 4.7 µs a call copied a row at a time, 0.35 so (the median of nine
/// timings of 2,000 calls, one thread, AVX2 build, AMD EPYC Zen 5).
@_specialize(where T == Float)
@_specialize(where T == Double)
public func balanceColumnsBackward<T: KernelScalar>(
  rows: Int, columns: Int, shares f: UnsafePointer<T>, experts: T, gradient g: T,
  into dp: UnsafeMutablePointer<T>
) {
  let count = rows * columns
  guard count > 0 else { return }
  for c in 0..<columns { dp[c] = g * experts * f[c] / T(rows) }
  var written = columns
  while written < count {
    let run = min(written, count - written)
    (dp + written).update(from: dp, count: run)
    written += run
  }
}
