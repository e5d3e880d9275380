/// Causal self-attention for every (sequence, head): `O = softmax(Q·Kᵀ·scale + mask) · V`,
/// where the mask lets position t attend to positions 0...t only.
///
/// `q`, `k`, `v` and `output` use `layout` (`[batch, length, heads, size]`); each head is
/// read and written in place through the matmul's leading dimensions, so no transposed
/// copies are made. Writes the attention probabilities, `[batch, heads, length, length]`,
/// zero above the diagonal, for the backward pass. Masked scores are never computed into
/// the softmax, so nothing leaks from the future and no infinity is ever formed.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func causalAttention<T: KernelScalar>(
  query q: UnsafePointer<T>, key k: UnsafePointer<T>, value v: UnsafePointer<T>,
  layout: HeadLayout, scale: Double, into output: UnsafeMutablePointer<T>,
  probabilities: UnsafeMutablePointer<T>
) { attentionForward(q, k, v, layout, scale, output, probabilities) }

/// Backward of `causalAttention`, given its probabilities and the gradient of its output:
/// with `P` the probabilities and `dO` the gradient,
/// `dV = Pᵀ·dO`, `dP = dO·Vᵀ`, `dS = P ⊙ (dP − rowsum(dP ⊙ P)) · scale`,
/// `dQ = dS·K`, `dK = dSᵀ·Q`, each per (sequence, head).
@_specialize(where T == Float)
@_specialize(where T == Double)
public func causalAttentionBackward<T: KernelScalar>(
  query q: UnsafePointer<T>, key k: UnsafePointer<T>, value v: UnsafePointer<T>,
  probabilities: UnsafePointer<T>, gradient dOut: UnsafePointer<T>, layout: HeadLayout,
  scale: Double, dQuery: UnsafeMutablePointer<T>, dKey: UnsafeMutablePointer<T>,
  dValue: UnsafeMutablePointer<T>
) { attentionBackward(q, k, v, probabilities, dOut, layout, scale, dQuery, dKey, dValue) }

private func attentionForward<T: KernelScalar>(
  _ q: UnsafePointer<T>, _ k: UnsafePointer<T>, _ v: UnsafePointer<T>, _ layout: HeadLayout,
  _ scale: Double, _ output: UnsafeMutablePointer<T>, _ probabilities: UnsafeMutablePointer<T>
) {
  let t = layout.length
  parallelFor(layout.batch) { b in
    let base = layout.offset(batch: b, head: 0)
    let p = probabilities + b * layout.heads * t * t
    // Scores S = Q·Kᵀ, then a causal softmax of each row, scaled.
    matmul(q + base, k + base, into: p, layout.scoresShape, accumulate: false)
    for head in 0..<layout.heads {
      causalSoftmax(p + head * t * t, length: t, scale: T(scale))
    }
    // O = P·V.
    matmul(
      p, v + base, into: output + base, layout.headsShape(transposeA: false), accumulate: false)
  }
}

extension HeadLayout {
  /// `Q·Kᵀ` for all heads of one sequence, one product per head in a batch: the heads read
  /// in place (a head `size` scalars after the previous), a `[length, length]` matrix each.
  ///
  /// A sequence's heads go to one matmul rather than one each: at the toy tasks' 16 and 17
  /// positions, where every product is small and its fixed costs count, attention's forward
  /// and backward ran 1.17 to 1.25 times as fast so, at the bench model's 64 positions 1.02
  /// to 1.05 (AMD EPYC Zen 3, 2 threads, in turns; the same bits).
  ///
  /// Only the scores' lower triangle is used (`lowerOutput`), and P and dS are zero above the
  /// diagonal (`lowerA`; `upperA` transposed): the products skip the tiles above it and
  /// the zero steps of each chain. Forward and backward at 64 positions ran 1.22 times as
  /// fast so, at 17 and 16 positions 1.09 and 1.04 (AMD EPYC Zen 3, 2 threads, in turns;
  /// the same bits).
  var scoresShape: MatmulShape {
    var shape = MatmulShape(
      m: length, n: length, k: size, transposeB: true, batch: heads, batchStrideA: size,
      batchStrideB: size, leadingDimensionA: rowStride, leadingDimensionB: rowStride)
    shape.triangle = .lowerOutput
    return shape
  }

  /// `P·X` (or `Pᵀ·X`) for all heads of one sequence: a `[length, length]` matrix per head
  /// times the head of X, written into the head of the output, both read in place.
  func headsShape(transposeA: Bool) -> MatmulShape {
    var shape = MatmulShape(
      m: length, n: size, k: length, transposeA: transposeA, batch: heads,
      batchStrideA: length * length, batchStrideB: size, leadingDimensionB: rowStride,
      leadingDimensionC: rowStride)
    shape.batchStrideC = size
    shape.triangle = transposeA ? .upperA : .lowerA
    return shape
  }
}

/// The causal softmax of one head's `length × length` scores, in place: row `r` becomes the
/// softmax of its first `r + 1` numbers times `scale`, followed by zeros.
///
/// It works in three passes over the rows (maxima and scaling, exponentials, sums and
/// division), not row by row: the steps within a row depend on each other (the exponentials
/// need the maximum, the division their sum), while different rows do not, so a pass keeps
/// the CPU busy with many rows at once rather than waiting on one. On one thread of the AMD
/// EPYC Zen 3 (AVX2), in turns, a layer's softmax (bench model: 32 sequences of 64
/// positions, 4 heads) ran 1.41 times as fast so, attention's forward 1.09 and 1.10, with
/// the same bits: every number goes through the same operations as row by row.
@inline(__always)
private func causalSoftmax<T: KernelScalar>(
  _ scores: UnsafeMutablePointer<T>, length t: Int, scale: T
) {
  // A row's exponentials are computed in whole vectors, as far as the row goes: the numbers
  // past the visible ones in its last vector (unused; a skipped tile's never computed) are
  // set to zero, exponentiated with the rest and zeroed again at the end. So no short
  // vector is copied lane by lane (attention's forward and backward 1.10 to 1.21 times as
  // fast at 16, 17 and 64 positions, AMD EPYC Zen 3, in turns), and the visible numbers
  // keep their bits (`exp` works lane by lane).
  let lanes = Vector<T>.scalarCount
  /// Where row `row`'s last vector ends: its `row + 1` visible numbers rounded up to whole
  /// vectors, within the row.
  func vectorEnd(_ row: Int) -> Int { min(t, (row + lanes) / lanes * lanes) }
  withUnsafeTemporaryAllocation(of: T.self, capacity: t) { shifts in
    for r in 0..<t {
      let row = scores + r * t
      shifts[r] = contiguousMax(row, r + 1) * scale
      for s in 0...r { row[s] *= scale }
      for s in (r + 1)..<vectorEnd(r) { row[s] = 0 }
    }
    for r in 0..<t {
      let row = scores + r * t
      exponentiate(row, minus: shifts[r], into: row, count: vectorEnd(r))
    }
    for r in 0..<t {
      let row = scores + r * t
      let inverse = 1 / contiguousSum(row, r + 1)
      for s in 0...r { row[s] *= inverse }
      for s in (r + 1)..<t { row[s] = 0 }
    }
  }
}

private func attentionBackward<T: KernelScalar>(
  _ q: UnsafePointer<T>, _ k: UnsafePointer<T>, _ v: UnsafePointer<T>,
  _ probabilities: UnsafePointer<T>, _ dOut: UnsafePointer<T>, _ layout: HeadLayout,
  _ scale: Double, _ dq: UnsafeMutablePointer<T>, _ dk: UnsafeMutablePointer<T>,
  _ dv: UnsafeMutablePointer<T>
) {
  let t = layout.length
  let (plain, transposed) = (
    layout.headsShape(transposeA: false), layout.headsShape(transposeA: true)
  )
  parallelFor(layout.batch) { b in
    let base = layout.offset(batch: b, head: 0)
    let p = probabilities + b * layout.heads * t * t
    Scratch.with(T.self, count: layout.heads * t * t) { ds in
      // dV = Pᵀ·dO.
      matmul(p, dOut + base, into: dv + base, transposed, accumulate: false)
      // dP = dO·Vᵀ, then through the softmax: dS = P ⊙ (dP − ⟨dP, P⟩) · scale.
      matmul(dOut + base, v + base, into: ds, layout.scoresShape, accumulate: false)
      for headRow in 0..<layout.heads * t {
        let row = headRow % t
        let dRow = ds + headRow * t
        let pRow = p + headRow * t
        let dot = contiguousDot(UnsafePointer(dRow), pRow, row + 1)
        for s in 0...row { dRow[s] = pRow[s] * (dRow[s] - dot) * T(scale) }
        for s in (row + 1)..<t { dRow[s] = 0 }
      }
      // dQ = dS·K and dK = dSᵀ·Q.
      matmul(ds, k + base, into: dq + base, plain, accumulate: false)
      matmul(ds, q + base, into: dk + base, transposed, accumulate: false)
    }
  }
}
