import Autodiff
import Kernels

/// A Linear with a low-rank update, `y = x · Wᵀ + s · (x · Aᵀ) · Bᵀ` (LoRA's layer, `W`
/// `[out, in]`, `A` `[rank, in]`, `B` `[out, rank]`), as one operation.
///
/// Written with primitive operations (`lowRankLinearReference`), the update makes three
/// tensors as large as the output (`(x·Aᵀ)·Bᵀ`, its product with s, the sum) and its
/// backward one more (the gradient times s). Here the output is written once: the product
/// `x · Wᵀ`, then the update added into it by the matmul itself (`accumulate`), with s
/// applied to the narrow `x · Aᵀ` instead of the wide output. For s a power of two (α / r
/// with the toy recipes' α = 32, r = 8) every bit is the reference's: scaling by 2ᵉ is
/// exact, and the input's two contributions reach it in the reference's order, the
/// update's first.
public func lowRankLinear(
  _ x: Tensor, weight: Tensor, a: Tensor, b: Tensor, scale: Double
) -> Tensor {
  let (outputs, inputs) = (weight.shape[0], weight.shape[1])
  let rank = a.shape[0]
  precondition(
    weight.rank == 2 && a.shape == [rank, inputs] && b.shape == [outputs, rank]
      && x.shape.last == inputs,
    "low-rank linear: x \(x.shape), W \(weight.shape), A \(a.shape), B \(b.shape)")
  let rows = x.count / inputs
  var scaledStorage: Storage? = nil
  func forward<T: KernelScalar>(_ t: [[T]], _ y: UnsafeMutablePointer<T>) {
    matmul(t[0], t[1], into: y, MatmulShape(m: rows, n: outputs, k: inputs, transposeB: true))
    let scaled: [T] = makeArray(rows * rank) { h in
      matmul(t[0], t[2], into: h, MatmulShape(m: rows, n: rank, k: inputs, transposeB: true))
      for i in 0..<rows * rank { h[i] *= T(scale) }
    }
    matmul(
      scaled, t[3], into: y, MatmulShape(m: rows, n: outputs, k: rank, transposeB: true),
      accumulate: true)
    scaledStorage = Storage(scaled)
  }
  let y = Tensor(
    shape: Array(x.shape.dropLast()) + [outputs],
    storage: runKernel([x, weight, a, b], count: rows * outputs, float: forward, double: forward))
  // s · x · Aᵀ, `[rows, rank]`: what B multiplies.
  let scaled = Tensor(shape: [rows, rank], storage: scaledStorage!)
  // The input twice: its gradient through the update, then through W (the reference's order).
  return y.recorded(inputs: [x, x, weight, a, b]) { g, needed in
    let g = g.reshaped([rows, outputs])
    let rowsOfX = x.reshaped([rows, inputs])
    // The gradient of x · Aᵀ: s · g · B.
    let dh = needed[0] || needed[3] ? matmul(g, b) * scale : nil
    return [
      needed[0] ? matmul(dh!, a).reshaped(x.shape) : nil,
      needed[1] ? matmul(g, weight).reshaped(x.shape) : nil,
      needed[2] ? matmul(g, rowsOfX, transposeA: true) : nil,
      needed[3] ? matmul(dh!, rowsOfX, transposeA: true) : nil,
      needed[4] ? matmul(g, scaled, transposeA: true) : nil,
    ]
  }
}

/// `lowRankLinear` written with primitive operations, as PEFT computes a LoRA layer.
public func lowRankLinearReference(
  _ x: Tensor, weight: Tensor, a: Tensor, b: Tensor, scale: Double
) -> Tensor {
  matmul(x, weight, transposeB: true) + matmul(matmul(x, a, transposeB: true), b, transposeB: true)
    * scale
}
