import Kernels

// Picking elements by index: rows of a table (an embedding lookup) and the k largest
// entries of each row (as they are, or renormalised to sum to one). Indices are plain
// integers and have no gradient.

extension Tensor {
  /// Rows of this `[rows, width]` table at `indices`, shaped `indexShape + [width]`.
  /// Its backward adds each row's gradient into the table at its index (scatter-add),
  /// so a row looked up twice receives both gradients.
  public func gatherRows(_ indices: [Int], shape indexShape: [Int]) -> Tensor {
    precondition(rank == 2, "gatherRows needs a [rows, width] table, got \(shape)")
    precondition(
      Shape.count(indexShape) == indices.count, "\(indices.count) indices for shape \(indexShape)")
    for index in indices where index < 0 || index >= shape[0] {
      preconditionFailure("row index \(index) out of 0..<\(shape[0])")
    }
    let y = gathered(rows: indices, shape: indexShape + [shape[1]])
    return y.recorded((self, { g in g.scatteredAdd(rows: indices, tableRows: self.shape[0]) }))
  }

  /// The `k` largest values along the last axis, largest first, and their positions
  /// (row-major, `k` per row). Among equal values the lower position comes first. The
  /// values' gradient flows back to the positions they were taken from.
  public func topK(_ k: Int) -> (values: Tensor, indices: [Int]) {
    precondition(rank >= 1 && k >= 0 && k <= shape.last!, "top-\(k) of shape \(shape)")
    let (values, indices) = largest(k)
    let y = values.recorded(
      (
        self,
        { g in
          let columns = self.shape.last!
          var scattered = [Double](repeating: 0, count: self.count)
          let gradient = g.scalars
          for (position, column) in indices.enumerated() {
            scattered[(position / k) * columns + column] += gradient[position]
          }
          return Tensor(shape: self.shape, scalars: scattered, dtype: self.dtype)
        }
      ))
    return (y, indices)
  }
}

extension Tensor {
  /// Each row's `k` largest entries divided by their sum, the other entries zero: `(M ⊙ x) /
  /// Σ (M ⊙ x)` along the last axis, with M the 0/1 mask of the `k` largest (ties to the
  /// lower index, as `topK`); and the columns kept, row-major, `k` per row. A router's top-k
  /// weights from its probabilities. The gradient reaches the kept entries only.
  ///
  /// One kernel each way (`renormalizeTopKRows`) with the bits of the primitive operations,
  /// `renormalizedTopKReference`: in the bench mixture's step (16 sites), the selection, the
  /// mask and the renormalisation took 1.9 ms as those operations and take 1.2 ms so (AMD
  /// EPYC Zen 3, 2 threads, `bench train-mixer --profile`).
  public func renormalizedTopK(_ k: Int) -> (values: Tensor, indices: [Int]) {
    precondition(rank >= 1 && k >= 1 && k <= shape.last!, "renormalised top-\(k) of \(shape)")
    let columns = shape.last!
    let rows = count / columns
    let indices = largest(k).indices
    func forward<T: KernelScalar>(_ t: [[T]], _ y: UnsafeMutablePointer<T>) {
      renormalizeTopKRows(t[0], rows: rows, columns: columns, k: k, indices: indices, into: y)
    }
    let y = Tensor(
      shape: shape, storage: runKernel([self], count: count, float: forward, double: forward))
    let recorded = y.recorded(
      (
        self,
        { g in
          func backward<T: KernelScalar>(_ t: [[T]], _ dx: UnsafeMutablePointer<T>) {
            renormalizeTopKRowsBackward(
              t[0], output: t[1], gradient: t[2], rows: rows, columns: columns, k: k,
              indices: indices, into: dx)
          }
          return Tensor(
            shape: self.shape,
            storage: runKernel([self, y, g], count: self.count, float: backward, double: backward))
        }
      ), operation: "renormalizedTopK")
    return (recorded, indices)
  }

  /// `renormalizedTopK` with primitive operations: the mask as a tensor, a product, a row
  /// sum and a division.
  public func renormalizedTopKReference(_ k: Int) -> (values: Tensor, indices: [Int]) {
    let columns = shape.last!
    let indices = detached().topK(k).indices
    var mask = [Double](repeating: 0, count: count)
    for (position, column) in indices.enumerated() { mask[(position / k) * columns + column] = 1 }
    let kept = self * Tensor(shape: shape, scalars: mask, dtype: dtype)
    return (kept / kept.sum(axes: [-1], keepDimensions: true), indices)
  }
}

extension Tensor {
  /// A `[rowCount, width]` tensor of zeros with each row of this `[indices.count, width]`
  /// tensor added at its index: `out[indices[i]] += self[i]`. Its backward pass gathers the
  /// gradient's rows back (the reverse of `gatherRows`).
  public func scatterAddRows(_ indices: [Int], rowCount: Int) -> Tensor {
    precondition(
      rank == 2 && shape[0] == indices.count,
      "scatterAddRows of \(shape) with \(indices.count) indices")
    for index in indices where index < 0 || index >= rowCount {
      preconditionFailure("row index \(index) out of 0..<\(rowCount)")
    }
    let y = scatteredAdd(rows: indices, tableRows: rowCount)
    return y.recorded(
      (self, { g in g.gathered(rows: indices, shape: [indices.count, self.shape[1]]) }))
  }
}
