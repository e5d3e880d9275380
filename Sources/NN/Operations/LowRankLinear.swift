import Autodiff
import Kernels

/// A Linear with a low-rank update, `y = x · Wᵀ + s · (x · Aᵀ) · Bᵀ` (LoRA's layer, `W`
/// `[out, in]`, `A` `[rank, in]`, `B` `[out, rank]`), its output written once.
///
/// Written with primitive operations (`lowRankLinearReference`), the update makes three
/// tensors as large as the output (`(x·Aᵀ)·Bᵀ`, its product with s, the sum) and its
/// backward one more (the gradient times s). Here s scales the narrow `x · Aᵀ` instead of
/// the wide output, and `linearPlusUpdate` adds the update into `x · Wᵀ` by the matmul
/// itself. For s a power of two (α / r with the toy recipes' α = 32, r = 8) every bit is
/// the reference's: scaling by 2ᵉ is exact, and the input's two gradients reach it in the
/// reference's order, through W first (the reference computes the update first, so the
/// backward pass meets its product with W first), each added to the sum as it is formed.
public func lowRankLinear(
  _ x: Tensor, weight: Tensor, a: Tensor, b: Tensor, scale: Double
) -> Tensor {
  let inputs = weight.shape[1]
  precondition(
    weight.rank == 2 && a.rank == 2 && a.shape[1] == inputs
      && b.shape == [weight.shape[0], a.shape[0]]
      && x.shape.last == inputs,
    "low-rank linear: x \(x.shape), W \(weight.shape), A \(a.shape), B \(b.shape)")
  let scaled = matmul(x.reshaped([-1, inputs]), a, transposeB: true) * scale  // s · x · Aᵀ
  return linearPlusUpdate(x, weight: weight, update: scaled, b: b, operation: "lowRankLinear")
}

/// `lowRankLinear` written with primitive operations, as PEFT computes a LoRA layer.
public func lowRankLinearReference(
  _ x: Tensor, weight: Tensor, a: Tensor, b: Tensor, scale: Double
) -> Tensor {
  // The update first, as a Linear adds an adapter's term (`Linear.callAsFunction`).
  let update = matmul(matmul(x, a, transposeB: true), b, transposeB: true) * scale
  return matmul(x, weight, transposeB: true) + update
}
