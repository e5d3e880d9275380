import Autodiff
import Kernels

// The routing loss's two terms per site as single operations, one kernel each way
// (Kernels/RoutingLosses.swift), with the bits of the formulas in RoutingLoss.swift written
// with primitive operations (`meanEntropyReference`, `balanceTermReference`). Eleven
// operations a site become two: in the bench mixture's step (16 sites) they took 1.7 to 2.4
// ms, forward and backward, against 2.8 to 3.1 (AMD EPYC Zen 3, 2 threads, `bench
// train-mixer --profile`, four runs each in turns).

/// `−mean_rows Σ_c p · log_softmax(z)`, the mean entropy of the rows of `probabilities`
/// (`[rows, experts]`) with their log from the `logits`' log-softmax. A scalar.
func meanRowEntropy(probabilities p: Tensor, logits z: Tensor) -> Tensor {
  precondition(p.rank == 2 && p.shape == z.shape, "entropy of \(p.shape) with logits \(z.shape)")
  let (rows, columns) = (p.shape[0], p.shape[1])
  // The value, and the log-probabilities the backward pass needs.
  func forward<T: KernelScalar>(
    _ t: [[T]], _ y: UnsafeMutablePointer<T>, _ log: UnsafeMutablePointer<T>
  ) {
    y[0] = meanEntropyRows(t[0], logits: t[1], rows: rows, columns: columns, logProbabilities: log)
  }
  let (value, logProbabilities) = runKernel(
    [p, z], counts: (1, p.count), float: forward, double: forward)
  let saved = Tensor(shape: p.shape, storage: logProbabilities)
  return Tensor(shape: [], storage: value).recorded(
    inputs: [p, z], operation: "meanRowEntropy"
  ) { g, needed in
    func backward<T: KernelScalar>(
      _ t: [[T]], _ dp: UnsafeMutablePointer<T>, _ dz: UnsafeMutablePointer<T>
    ) {
      meanEntropyRowsBackward(
        t[0], logProbabilities: t[1], rows: rows, columns: columns, gradient: t[2][0],
        dp: needed[0] ? dp : nil, dz: needed[1] ? dz : nil)
    }
    let (dp, dz) = runKernel(
      [p, saved, g], counts: (needed[0] ? p.count : 0, needed[1] ? z.count : 0),
      float: backward, double: backward)
    return [
      needed[0] ? Tensor(shape: p.shape, storage: dp) : nil,
      needed[1] ? Tensor(shape: z.shape, storage: dz) : nil,
    ]
  }
}

/// `experts · Σ_c mean_rows(p[:, c]) · f[c]`, the balance term counted by token, for the
/// `probabilities` (`[rows, experts]`) and each expert's share `f` of the selections. A
/// scalar; `f` has no gradient.
func tokenBalance(probabilities p: Tensor, shares f: [Double], experts: Int) -> Tensor {
  precondition(p.rank == 2 && p.shape[1] == f.count, "balance of \(p.shape), \(f.count) shares")
  let (rows, columns) = (p.shape[0], p.shape[1])
  let shares = Tensor(shape: [columns], scalars: f, dtype: p.dtype)
  func forward<T: KernelScalar>(_ t: [[T]], _ y: UnsafeMutablePointer<T>) {
    y[0] = balanceColumns(t[0], rows: rows, columns: columns, shares: t[1], experts: T(experts))
  }
  let y = Tensor(
    shape: [], storage: runKernel([p, shares], count: 1, float: forward, double: forward))
  return y.recorded(inputs: [p], operation: "tokenBalance") { g, _ in
    func backward<T: KernelScalar>(_ t: [[T]], _ dp: UnsafeMutablePointer<T>) {
      balanceColumnsBackward(
        rows: rows, columns: columns, shares: t[0], experts: T(experts), gradient: t[1][0],
        into: dp)
    }
    return [
      Tensor(
        shape: p.shape,
        storage: runKernel([shares, g], count: p.count, float: backward, double: backward))
    ]
  }
}
