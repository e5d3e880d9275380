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
  let (k, bk) = (matrixSize(a, transposed: transposeA).1, matrixSize(b, transposed: transposeB).0)
  precondition(
    k == bk,
    "matmul inner sizes differ: \(a.shape)\(transposeA ? "ᵀ" : "") · \(b.shape)\(transposeB ? "ᵀ" : "")"
  )
  // A matrix times a matrix, or a batch of inputs times one weight matrix (a Linear layer):
  // the batch folded into rows, so forward and backward are each one large product.
  if b.rank == 2 && (a.rank == 2 || !transposeA) {
    return rowsTimesMatrix(a, b, transposeA: transposeA, transposeB: transposeB)
  }
  let (m, _) = matrixSize(a, transposed: transposeA)
  let n = matrixSize(b, transposed: transposeB).1
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

/// `op(a) · op(b)` for a matrix `b` and a matrix `a`, or rows `a` of any rank (`[..., k]`,
/// not transposed), which give the output's leading axes. Each gradient is one product of
/// matrices, and, when its input already has a gradient from elsewhere (a site's rows, read
/// by its router and its experts; a layer's input, read by q, k and v), it is added to that
/// gradient as it is formed (`Tape.Edge.adding`: the product accumulated into that
/// gradient's numbers in place), with the bits of the sum. When this came (the sum then
/// copied into the product's array first), the bench mixture's step took 0.66 ms less
/// (eight rounds in turns, seven faster), the base model's 0.43 (six rounds, five faster;
/// AVX2 build for Zen 3 on the AMD EPYC Zen 5, 2 threads). (Rows of rank 3 were reshaped to
/// a matrix before, on the tape, and their gradient reshaped back; now the product is
/// recorded on them as they are.)
private func rowsTimesMatrix(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool)
  -> Tensor
{
  // A's rows and the output's as matrices: views of the same numbers.
  let (m, k) =
    a.rank == 2
    ? matrixSize(a, transposed: transposeA)
    : (Shape.count(Array(a.shape.dropLast())), a.shape.last!)
  let n = matrixSize(b, transposed: transposeB).1
  let aMatrix = a.rank == 2 ? a : a.viewed(as: [m, k])
  let y = product(aMatrix, b, transposeA: transposeA, transposeB: transposeB)
  let output = a.rank == 2 ? y : y.viewed(as: Array(a.shape.dropLast()) + [n])
  func gradientOfA(_ g: Tensor, adding sofar: Tensor?) -> Tensor {
    let g = g.viewed(as: [m, n])
    // op(B) · gᵀ, stored [k, m]; or g · op(B)ᵀ. (The sum so far is added into as it is,
    // A's shape: a view of it would share its numbers, and writing would copy them.)
    let gradient =
      transposeA
      ? product(b, g, transposeA: transposeB, transposeB: true, adding: sofar)
      : product(g, b, transposeB: !transposeB, adding: sofar)
    return gradient.viewed(as: a.shape)
  }
  func gradientOfB(_ g: Tensor, adding sofar: Tensor?) -> Tensor {
    let g = g.viewed(as: [m, n])
    // gᵀ · op(A), stored [n, k]; or op(A)ᵀ · g.
    return transposeB
      ? product(g, aMatrix, transposeA: true, transposeB: transposeA, adding: sofar)
      : product(aMatrix, g, transposeA: !transposeA, adding: sofar)
  }
  return output.recorded(
    [
      Tape.Edge(
        input: a, vectorJacobianProduct: { gradientOfA($0, adding: nil) },
        adding: { gradientOfA($0, adding: $1) }),
      Tape.Edge(
        input: b, vectorJacobianProduct: { gradientOfB($0, adding: nil) },
        adding: { gradientOfB($0, adding: $1) }),
    ], operation: "matmul")
}

/// `op(x) · op(y)` of two matrices, unrecorded; with `adding`, `D + op(x) · op(y)`, with the
/// bits of the product formed and then added.
private func product(
  _ x: Tensor, _ y: Tensor, transposeA: Bool = false, transposeB: Bool = false,
  adding d: Tensor? = nil
) -> Tensor {
  let (m, k) = matrixSize(x, transposed: transposeA)
  let n = matrixSize(y, transposed: transposeB).1
  return Tensor.multiplied(
    x, y, MatmulShape(m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB),
    shape: [m, n], adding: d)
}

extension Tensor {
  /// The same numbers under another shape of the same count, never recorded (`reshaped`
  /// records itself while a tape is active: in the forward pass here it would put back the
  /// reshapes this product's rows do without).
  fileprivate func viewed(as shape: [Int]) -> Tensor {
    self.shape == shape ? self : Tensor(shape: shape, storage: storage)
  }
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
