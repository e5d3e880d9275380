import Autodiff
import Kernels

/// `x · Wᵀ + h · Bᵀ` as one operation (`W` `[out, in]`, `h` `[rows, r]`, `B` `[out, r]`): a
/// Linear plus a low-rank update, `h` what B multiplies (`s · x · Aᵀ` for LoRA's layer,
/// `lowRankLinear`; a routed site's weighted ranks).
///
/// Written with primitive operations it makes the two products apart and their sum, three
/// arrays as large as the output; here one matmul call adds the second product into the
/// first, block by block of the output while the block is in cache (`matmul(_:_:_:plus:…)`),
/// rounding each sum as the addition does: the same bits. Backward, x's gradient through W,
/// `g · W`, is added into x's gradient so far as it is formed, as `matmul`'s is: the bits
/// of `x · Wᵀ + update` when the update was computed first (`Linear.callAsFunction`'s
/// order), so that the backward pass meets the product with W first.
///
/// `zeroBlocks`, when given, cuts h's columns into blocks most of which are zero in each
/// row, and lists the rows that hold each (a hard-routed mixture's experts' ranks, all but
/// the selected experts' zero; the tokens that selected each). The update then skips the
/// zeros on every kernel but AVX-512's (`BlockSparseProduct`), and B's gradient `gᵀ · h`
/// sums each block's columns over its rows alone on every kernel
/// (`TransposedBlockSparseProduct`), with the same bits.
/// `operation` names the record in a tape's profile (a routed site's are this function's).
public func linearPlusUpdate(
  _ x: Tensor, weight: Tensor, update h: Tensor, b: Tensor, zeroBlocks: BlockRows? = nil,
  operation: String = "linearPlusUpdate"
) -> Tensor {
  let (outputs, inputs) = (weight.shape[0], weight.shape[1])
  let rows = x.count / inputs
  let rank = h.shape[1]
  precondition(
    weight.rank == 2 && x.shape.last == inputs && h.shape == [rows, rank]
      && b.shape == [outputs, rank],
    "linear plus update: x \(x.shape), W \(weight.shape), h \(h.shape), B \(b.shape)")
  func forward<T: KernelScalar>(_ t: [[T]], _ y: UnsafeMutablePointer<T>) {
    let linear = MatmulShape(m: rows, n: outputs, k: inputs, transposeB: true)
    guard let zeroBlocks else {
      return matmul(
        t[0], t[1], linear, plus: t[2], t[3],
        MatmulShape(m: rows, n: outputs, k: rank, transposeB: true), into: y)
    }
    // B came transposed (below), `[rank, outputs]`: the rows the sparse product reads.
    let sparse = BlockSparseProduct(
      a: t[2], b: t[3], depth: rank, columns: outputs, blocks: zeroBlocks.blocks)
    matmul(t[0], t[1], linear, plus: sparse, into: y)
  }
  let bOperand = zeroBlocks == nil ? b : b.detached().transposed()
  let y = Tensor(
    shape: Array(x.shape.dropLast()) + [outputs],
    storage: runKernel(
      [x, weight, h, bOperand], count: rows * outputs, float: forward, double: forward))
  // B's gradient, `gᵀ · h`; with zero blocks, as `(hᵀ · g)ᵀ` over each block's rows alone.
  func bGradient(_ g: Tensor) -> Tensor {
    guard let zeroBlocks else { return matmul(g, h, transposeA: true) }
    func kernel<T: KernelScalar>(_ t: [[T]], _ db: UnsafeMutablePointer<T>) {
      TransposedBlockSparseProduct(
        a: t[0], b: t[1], depth: rank, columns: outputs, blockRows: zeroBlocks
      ).run(into: db, transposedC: true)
    }
    return Tensor(
      shape: b.shape, storage: runKernel([h, g], count: b.count, float: kernel, double: kernel))
  }
  // x's gradient `g · W`, or that added into x's gradient so far as it is formed.
  func xGradient(_ g: Tensor, adding sofar: Tensor?) -> Tensor {
    let shape = MatmulShape(m: rows, n: inputs, k: outputs)
    func kernel<T: KernelScalar>(_ t: [[T]], _ dx: UnsafeMutablePointer<T>) {
      matmul(t[0], t[1], into: dx, shape, accumulate: sofar != nil)
    }
    return runKernel([g, weight], shape: x.shape, addingInto: sofar, float: kernel, double: kernel)
  }
  func weightGradient(_ g: Tensor) -> Tensor {
    matmul(g.reshaped([rows, outputs]), x.reshaped([rows, inputs]), transposeA: true)
  }
  return y.recorded(
    edges: [
      (x, { xGradient($0, adding: nil) }, { xGradient($0, adding: $1) }),
      (weight, weightGradient, nil),
      (h, { matmul($0.reshaped([rows, outputs]), b) }, nil),
      (b, { bGradient($0.reshaped([rows, outputs])) }, nil),
    ], operation: operation)
}
