import Kernels

// Sums, means and maxima over axes, and broadcasting a tensor up to a larger shape and
// summing it back down: each is the other's backward pass.

extension Tensor {
  /// The sum over `axes` (every axis if nil). With `keepDimensions`, each summed axis
  /// stays with length 1; otherwise it is removed.
  public func sum(axes: [Int]? = nil, keepDimensions: Bool = false) -> Tensor {
    let axes = reductionAxes(axes)
    var kept = self
    for axis in axes { kept = kept.summed(alongAxis: axis) }
    let y = Tensor(shape: reducedShape(axes, keepDimensions), storage: kept.storage)
    // Every input element contributes once to its sum: the gradient is g, repeated.
    return y.recorded((self, { g in g.reshaped(kept.shape).broadcast(to: self.shape) }))
  }

  /// The mean over `axes` (every axis if nil), like `sum`.
  public func mean(axes: [Int]? = nil, keepDimensions: Bool = false) -> Tensor {
    let axes = reductionAxes(axes)
    let length = axes.reduce(1) { $0 * shape[$1] }
    return sum(axes: axes, keepDimensions: keepDimensions) / Double(length)
  }

  /// The maximum over `axes` (every axis if nil), like `sum`. The gradient goes to the
  /// element that is the maximum (the first one, where several are equal).
  public func max(axes: [Int]? = nil, keepDimensions: Bool = false) -> Tensor {
    let axes = reductionAxes(axes)
    var y = self
    for axis in axes { y = y.maximum(keepingAxis: axis) }
    return keepDimensions ? y : y.reshaped(reducedShape(axes, false))
  }

  /// The maximum along one axis, kept with length 1.
  private func maximum(keepingAxis axis: Int) -> Tensor {
    let (values, indices) = max(alongAxis: axis)
    return values.recorded(
      (
        self,
        { g in
          // Route each gradient to the position of its maximum: g times a one-hot mask.
          let (outer, length, inner) = self.outerLengthInner(around: axis)
          var mask = [Double](repeating: 0, count: self.count)
          for o in 0..<outer {
            for i in 0..<inner { mask[(o * length + indices[o * inner + i]) * inner + i] = 1 }
          }
          return Tensor(shape: self.shape, scalars: mask, dtype: self.dtype) * g
        }
      ))
  }

  /// This tensor repeated along broadcast axes to `target` (NumPy's `broadcast_to`).
  public func broadcast(to target: [Int]) -> Tensor {
    if shape == target { return self }
    let y = copied(strides: Shape.broadcastStrides(of: shape, to: target), shape: target)
    return y.recorded((self, { g in g.sumToShape(self.shape) }))
  }

  /// Sums this tensor down to `target`, a shape it was broadcast from: over its extra
  /// leading axes and over every axis where `target` has length 1. This undoes
  /// broadcasting in every backward pass.
  public func sumToShape(_ target: [Int]) -> Tensor {
    if shape == target { return self }
    let lead = rank - target.count
    precondition(lead >= 0, "cannot sum \(shape) down to \(target)")
    let axes =
      Array(0..<lead)
      + target.indices.filter { target[$0] == 1 && shape[$0 + lead] != 1 }.map { $0 + lead }
    return sum(axes: axes, keepDimensions: true).reshaped(target)
  }

  /// Normalized, sorted, distinct axes; all axes for nil.
  private func reductionAxes(_ axes: [Int]?) -> [Int] {
    guard let axes else { return Array(0..<rank) }
    return Array(Set(axes.map { Shape.normalize(axis: $0, rank: rank) })).sorted()
  }

  /// The shape after reducing `axes`.
  private func reducedShape(_ axes: [Int], _ keepDimensions: Bool) -> [Int] {
    if keepDimensions { return shape.indices.map { axes.contains($0) ? 1 : shape[$0] } }
    return shape.indices.filter { !axes.contains($0) }.map { shape[$0] }
  }
}
