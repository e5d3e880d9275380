import Autodiff
import Kernels

/// Where each present expert's rank sits among the stacked ranks of `experts`, in order:
/// the columns of `x · A_allᵀ` (`stackedExperts`). An absent expert has none.
func stackedRanks(_ experts: [LoRA?]) -> [RankColumns] {
  var ranks: [RankColumns] = []
  var column = 0
  for (index, expert) in experts.enumerated() {
    guard let expert else { continue }
    ranks.append(
      RankColumns(expert: index, columns: column..<column + expert.rank, scale: expert.scale))
    column += expert.rank
  }
  return ranks
}

/// The stacked ranks `h` (`[tokens, Σ ranks]`) with each expert's columns times its routing
/// weight and scale, `h[t, j] · w[t, e] · s_e`, in one kernel each way
/// (`weightRankColumns`); `w` is `[tokens, experts]`. The same bits as
/// `weightedRanksReference`, the product with S and the multiplication it replaces, four
/// operations each way on arrays as large as `h`. The bench mixture's training step took
/// 0.975 of the time so (the median over eight pairs of processes run in turns, 11 steps
/// each; AMD EPYC Zen 3, AVX2, 2 threads).
func weightedRanks(_ h: Tensor, weights: Tensor, ranks: [RankColumns]) -> Tensor {
  let (rows, width, experts) = (h.shape[0], h.shape[1], weights.shape[1])
  precondition(
    h.rank == 2 && weights.shape == [rows, experts]
      && ranks.allSatisfy { $0.expert < experts && $0.columns.upperBound <= width },
    "weighted ranks: h \(h.shape), weights \(weights.shape), ranks \(ranks)")
  func forward<T: KernelScalar>(_ t: [[T]], _ y: UnsafeMutablePointer<T>) {
    weightRankColumns(
      t[0], weights: t[1], ranks: ranks, rows: rows, width: width, experts: experts, into: y)
  }
  let y = Tensor(
    shape: h.shape,
    storage: runKernel([h, weights], count: h.count, float: forward, double: forward))
  return y.recorded(inputs: [h, weights]) { g, needed in
    func backward<T: KernelScalar>(
      _ t: [[T]], _ dh: UnsafeMutablePointer<T>, _ dw: UnsafeMutablePointer<T>
    ) {
      weightRankColumnsBackward(
        t[0], weights: t[1], gradient: t[2], ranks: ranks, rows: rows, width: width,
        experts: experts, dh: needed[0] ? dh : nil, dWeights: needed[1] ? dw : nil)
    }
    let (dh, dWeights) = runKernel(
      [h, weights, g], counts: (needed[0] ? h.count : 0, needed[1] ? weights.count : 0),
      float: backward, double: backward)
    return [
      needed[0] ? Tensor(shape: h.shape, storage: dh) : nil,
      needed[1] ? Tensor(shape: weights.shape, storage: dWeights) : nil,
    ]
  }
}

/// The stacked ranks `x · A_allᵀ`, `[tokens, Σ ranks]` (`rows` `[..., inputs]`, `a`
/// `[Σ ranks, inputs]`) when the routing is hard: then the gradient of the ranks, `dh`, is
/// zero in every block of `zeroBlocks` (the experts' columns) but the selected experts'
/// (`weightedRanks` multiplies the others by a weight of zero). The gradient of A_all,
/// `dhᵀ · rows`, sums each expert's rows over the tokens that selected it
/// (`TransposedBlockSparseProduct`), and on every kernel but AVX-512's the gradient of
/// `rows`, `dh · A_all`, skips those zeros (`BlockSparseProduct`): a third of the terms at
/// top-2 of 6, with the bits of `matmul(rows, a, transposeB: true)`'s gradients. Like
/// `matmul`'s, the rows' gradient is added into their gradient so far as it is formed
/// (`Tensor.recorded(edges:)`).
func hardRoutedRanks(_ rows: Tensor, _ a: Tensor, zeroBlocks: BlockRows) -> Tensor {
  let (inputs, depth) = (a.shape[1], a.shape[0])
  let tokens = rows.count / inputs
  let h = matmul(rows.detached().reshaped([tokens, inputs]), a.detached(), transposeB: true)
  // The rows' gradient `dh · A_all`, or that added into their gradient so far.
  func rowsGradient(_ dh: Tensor, adding sofar: Tensor?) -> Tensor {
    func kernel<T: KernelScalar>(_ t: [[T]], _ dx: UnsafeMutablePointer<T>) {
      BlockSparseProduct(
        a: t[0], b: t[1], depth: depth, columns: inputs, blocks: zeroBlocks.blocks
      ).run(rows: tokens, into: dx, accumulate: sofar != nil)
    }
    return runKernel([dh, a], shape: rows.shape, addingInto: sofar, float: kernel, double: kernel)
  }
  func aGradient(_ dh: Tensor) -> Tensor {
    func kernel<T: KernelScalar>(_ t: [[T]], _ da: UnsafeMutablePointer<T>) {
      TransposedBlockSparseProduct(
        a: t[0], b: t[1], depth: depth, columns: inputs, blockRows: zeroBlocks
      ).run(into: da)
    }
    return Tensor(
      shape: a.shape, storage: runKernel([dh, rows], count: a.count, float: kernel, double: kernel))
  }
  return h.recorded(
    edges: [
      (rows, { rowsGradient($0, adding: nil) }, { rowsGradient($0, adding: $1) }),
      (a, aGradient, nil),
    ])
}

/// `weightedRanks` with primitive operations: `h ⊙ (w · S)`, where S (`rankScales`) spreads
/// each expert's weight, times its scale, over its columns.
func weightedRanksReference(_ h: Tensor, weights: Tensor, ranks: [RankColumns]) -> Tensor {
  h
    * matmul(
      weights, rankScales(ranks, experts: weights.shape[1], width: h.shape[1], dtype: h.dtype))
}

/// S, `[experts, Σ ranks]`: row e holds s_e over expert e's columns and zeros elsewhere (an
/// absent expert's row is all zeros).
func rankScales(_ ranks: [RankColumns], experts: Int, width: Int, dtype: DType) -> Tensor {
  var scales = [Double](repeating: 0, count: experts * width)
  for block in ranks {
    for column in block.columns { scales[block.expert * width + column] = block.scale }
  }
  return Tensor(shape: [experts, width], scalars: scales, dtype: dtype)
}
