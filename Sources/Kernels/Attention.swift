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
  let d = layout.size
  let ld = layout.rowStride
  parallelFor(layout.batch * layout.heads) { task in
    let b = task / layout.heads
    let h = task % layout.heads
    let base = layout.offset(batch: b, head: h)
    let p = probabilities + task * t * t
    // Scores S = Q·Kᵀ, then a causal softmax of each row, scaled.
    matmul(
      q + base, k + base, into: p,
      MatmulShape(m: t, n: t, k: d, transposeB: true, leadingDimensionA: ld, leadingDimensionB: ld),
      accumulate: false)
    for row in 0..<t {
      let scores = p + row * t
      causalSoftmaxRow(scores, visible: row + 1, length: t, scale: T(scale))
    }
    // O = P·V.
    matmul(
      p, v + base, into: output + base,
      MatmulShape(m: t, n: d, k: t, leadingDimensionB: ld, leadingDimensionC: ld), accumulate: false
    )
  }
}

/// Softmax of `row[0..<visible] · scale` in place, and zeros after.
@inline(__always)
private func causalSoftmaxRow<T: KernelScalar>(
  _ row: UnsafeMutablePointer<T>, visible: Int, length: Int, scale: T
) {
  let largest = contiguousMax(row, visible)
  for s in 0..<visible { row[s] *= scale }
  exponentiate(row, minus: largest * scale, into: row, count: visible)
  let inverse = 1 / contiguousSum(row, visible)
  for s in 0..<visible { row[s] *= inverse }
  for s in visible..<length { row[s] = 0 }
}

private func attentionBackward<T: KernelScalar>(
  _ q: UnsafePointer<T>, _ k: UnsafePointer<T>, _ v: UnsafePointer<T>,
  _ probabilities: UnsafePointer<T>, _ dOut: UnsafePointer<T>, _ layout: HeadLayout,
  _ scale: Double, _ dq: UnsafeMutablePointer<T>, _ dk: UnsafeMutablePointer<T>,
  _ dv: UnsafeMutablePointer<T>
) {
  let t = layout.length
  let d = layout.size
  let ld = layout.rowStride
  parallelFor(layout.batch * layout.heads) { task in
    let b = task / layout.heads
    let h = task % layout.heads
    let base = layout.offset(batch: b, head: h)
    let p = probabilities + task * t * t
    Scratch.with(T.self, count: t * t) { ds in
      // dV = Pᵀ·dO.
      matmul(
        p, dOut + base, into: dv + base,
        MatmulShape(
          m: t, n: d, k: t, transposeA: true, leadingDimensionB: ld, leadingDimensionC: ld),
        accumulate: false)
      // dP = dO·Vᵀ, then through the softmax: dS = P ⊙ (dP − ⟨dP, P⟩) · scale.
      matmul(
        dOut + base, v + base, into: ds,
        MatmulShape(
          m: t, n: t, k: d, transposeB: true, leadingDimensionA: ld, leadingDimensionB: ld),
        accumulate: false)
      for row in 0..<t {
        let dRow = ds + row * t
        let pRow = p + row * t
        let dot = contiguousDot(UnsafePointer(dRow), pRow, row + 1)
        for s in 0...row { dRow[s] = pRow[s] * (dRow[s] - dot) * T(scale) }
        for s in (row + 1)..<t { dRow[s] = 0 }
      }
      // dQ = dS·K and dK = dSᵀ·Q.
      matmul(
        ds, k + base, into: dq + base,
        MatmulShape(m: t, n: d, k: t, leadingDimensionB: ld, leadingDimensionC: ld),
        accumulate: false)
      matmul(
        ds, q + base, into: dk + base,
        MatmulShape(
          m: t, n: d, k: t, transposeA: true, leadingDimensionB: ld, leadingDimensionC: ld),
        accumulate: false)
    }
  }
}
