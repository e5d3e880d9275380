import Kernels

/// The matrix product `op(a) · op(b)` over the last two axes, batched over the leading
/// axes (which broadcast as in NumPy). `op(a)` is `a`, or its transpose with `transposeA`
/// (read in place, never copied); likewise `op(b)`.
///
/// With `C = op(A) · op(B)` and `g` the gradient of C, the gradients are
/// `op(A)`: `g · op(B)ᵀ` and `op(B)`: `op(A)ᵀ · g`, each written below as a product in the
/// layout A or B is stored in, so backward needs no transposed copy either.
public func matmul(
  _ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false
) -> Tensor {
  precondition(a.rank >= 2 && b.rank >= 2, "matmul needs matrices, got \(a.shape) and \(b.shape)")
  // A batch of inputs times one weight matrix (a Linear layer): fold the batch into rows,
  // so forward and backward are each one large product.
  if b.rank == 2 && a.rank > 2 && !transposeA {
    let rows = matmul(a.reshaped([-1, a.shape.last!]), b, transposeB: transposeB)
    return rows.reshaped(Array(a.shape.dropLast()) + [rows.shape[1]])
  }
  let (m, k) = matrixSize(a, transposed: transposeA)
  let (bk, n) = matrixSize(b, transposed: transposeB)
  precondition(
    k == bk,
    "matmul inner sizes differ: \(a.shape)\(transposeA ? "ᵀ" : "") · \(b.shape)\(transposeB ? "ᵀ" : "")"
  )
  let batch = Shape.broadcast(Array(a.shape.dropLast(2)), Array(b.shape.dropLast(2)))
  let (aBatched, aStride) = batchOperand(a, batch)
  let (bBatched, bStride) = batchOperand(b, batch)
  let layout = MatmulShape(
    m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB,
    batch: Shape.count(batch), batchStrideA: aStride, batchStrideB: bStride)
  let y = Tensor.multiplied(aBatched, bBatched, layout, shape: batch + [m, n])
  return y.recorded(
    (
      a,
      { g in
        let product =
          transposeA
          ? matmul(b, g, transposeA: transposeB, transposeB: true)  // op(B) · gᵀ, stored [k, m]
          : matmul(g, b, transposeB: !transposeB)  // g · op(B)ᵀ
        return product.sumToShape(a.shape)
      }
    ),
    (
      b,
      { g in
        let product =
          transposeB
          ? matmul(g, a, transposeA: true, transposeB: transposeA)  // gᵀ · op(A), stored [n, k]
          : matmul(a, g, transposeA: !transposeA)  // op(A)ᵀ · g
        return product.sumToShape(b.shape)
      }
    ))
}

/// The (rows, columns) of `op(x)`.
private func matrixSize(_ x: Tensor, transposed: Bool) -> (Int, Int) {
  let rows = x.shape[x.rank - 2]
  let columns = x.shape[x.rank - 1]
  return transposed ? (columns, rows) : (rows, columns)
}

/// An operand for a batch of products of shape `batch`: its own matrices, one matrix
/// shared by the whole batch (stride 0), or, when it broadcasts in some batch axes only,
/// a copy expanded to the full batch.
private func batchOperand(_ x: Tensor, _ batch: [Int]) -> (Tensor, Int) {
  let matrix = Array(x.shape.suffix(2))
  let own = Array(x.shape.dropLast(2))
  if Shape.count(own) == Shape.count(batch) { return (x, Shape.count(matrix)) }
  if Shape.count(own) == 1 { return (x, 0) }
  let target = batch + matrix
  return (
    x.copied(strides: Shape.broadcastStrides(of: x.shape, to: target), shape: target),
    Shape.count(matrix)
  )
}
