import Testing

@testable import Kernels

/// Attention on every kernel has the bits of plain chains around the same softmax: each
/// score, output and gradient one fused multiply-add chain over the whole of its inner
/// dimension (`matmulChain`). The kernel's tiles skip only scores that are never used and
/// terms that are exact zeros (P and dS above the diagonal), so nothing it computes may
/// differ. Lengths shorter than a tile, ending in a partial tile and in whole ones; head
/// sizes of whole panels, of a narrow last one and of neither (B then copied).
@Test(arguments: MatmulKernel.allCases)
func attentionHasThePlainChainsBits(kernel: MatmulKernel) {
  checkAttention(Float.self, kernel: kernel)
  checkAttention(Double.self, kernel: kernel)
}

private func checkAttention<T: KernelScalar>(_: T.Type, kernel: MatmulKernel) {
  for (length, size) in [(1, 4), (3, 8), (17, 4), (17, 32), (64, 32), (65, 24), (37, 5)] {
    let layout = HeadLayout(batch: 2, length: length, heads: 3, size: size)
    let scale = 1 / Double(size).squareRoot()
    let (q, k, v, dOut): ([T], [T], [T], [T]) = (
      fill(layout.count, seed: 1), fill(layout.count, seed: 2), fill(layout.count, seed: 3),
      fill(layout.count, seed: 4)
    )
    let squares = layout.batch * layout.heads * length * length
    var fast = AttentionResults<T>(layout, squares)
    causalAttention(
      query: q, key: k, value: v, layout: layout, scale: scale, into: &fast.output,
      probabilities: &fast.p, kernel: kernel)
    causalAttentionBackward(
      query: q, key: k, value: v, probabilities: fast.p, gradient: dOut, layout: layout,
      scale: scale, dQuery: &fast.dq, dKey: &fast.dk, dValue: &fast.dv, kernel: kernel)
    var chains = AttentionResults<T>(layout, squares)
    chains.compute(q, k, v, dOut, layout, scale: T(scale))
    for (name, ours, theirs) in [
      ("output", fast.output, chains.output), ("probabilities", fast.p, chains.p),
      ("dQ", fast.dq, chains.dq), ("dK", fast.dk, chains.dk), ("dV", fast.dv, chains.dv),
    ] {
      #expect(
        sameBits(ours, theirs), "\(kernel), \(T.self), \(length) positions of \(size): \(name)")
    }
  }
}

/// Attention's output, probabilities and gradients.
private struct AttentionResults<T: KernelScalar> {
  var output, p, dq, dk, dv: [T]

  init(_ layout: HeadLayout, _ squares: Int) {
    output = [T](repeating: .nan, count: layout.count)
    (dq, dk, dv) = (output, output, output)
    p = [T](repeating: .nan, count: squares)
  }

  /// Head by head from the chains: S = Q·Kᵀ, P its causal softmax, O = P·V; dV = Pᵀ·dO,
  /// dP = dO·Vᵀ, dS = P ⊙ (dP − ⟨dP, P⟩) · scale, dQ = dS·K, dK = dSᵀ·Q.
  mutating func compute(
    _ q: [T], _ k: [T], _ v: [T], _ dOut: [T], _ layout: HeadLayout, scale: T
  ) {
    let (t, size, ld) = (layout.length, layout.size, layout.rowStride)
    let scores = MatmulShape(
      m: t, n: t, k: size, transposeB: true, leadingDimensionA: ld, leadingDimensionB: ld)
    func head(transposeA: Bool) -> MatmulShape {
      MatmulShape(
        m: t, n: size, k: t, transposeA: transposeA, leadingDimensionB: ld,
        leadingDimensionC: ld)
    }
    var ds = [T](repeating: 0, count: t * t)
    for index in 0..<layout.batch * layout.heads {
      let (b, h) = index.quotientAndRemainder(dividingBy: layout.heads)
      let base = layout.offset(batch: b, head: h)
      q.withUnsafeBufferPointer { q in
        k.withUnsafeBufferPointer { k in
          v.withUnsafeBufferPointer { v in
            dOut.withUnsafeBufferPointer { dOut in
              let (q, k, v, dOut) = (
                q.baseAddress! + base, k.baseAddress! + base, v.baseAddress! + base,
                dOut.baseAddress! + base
              )
              p.withUnsafeMutableBufferPointer { p in
                let p = p.baseAddress! + index * t * t
                matmulChain(q, k, into: p, scores)
                causalSoftmax(p, rowStride: t, rows: 0..<t, length: t, scale: scale)
                output.withUnsafeMutableBufferPointer {
                  matmulChain(p, v, into: $0.baseAddress! + base, head(transposeA: false))
                }
                dv.withUnsafeMutableBufferPointer {
                  matmulChain(p, dOut, into: $0.baseAddress! + base, head(transposeA: true))
                }
                ds.withUnsafeMutableBufferPointer { ds in
                  let ds = ds.baseAddress!
                  matmulChain(dOut, v, into: ds, scores)
                  for row in 0..<t {
                    let (dRow, pRow) = (ds + row * t, p + row * t)
                    let dot = contiguousDot(UnsafePointer(dRow), pRow, row + 1)
                    for s in 0..<t { dRow[s] = s <= row ? pRow[s] * (dRow[s] - dot) * scale : 0 }
                  }
                  dq.withUnsafeMutableBufferPointer {
                    matmulChain(ds, k, into: $0.baseAddress! + base, head(transposeA: false))
                  }
                  dk.withUnsafeMutableBufferPointer {
                    matmulChain(ds, q, into: $0.baseAddress! + base, head(transposeA: true))
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}
