// Reshaping, permuting, slicing and joining. None of these computes anything: each
// moves elements, and its backward moves the gradient back.

extension Tensor {
  /// The same elements in a new shape with the same count; one length may be -1, to be
  /// inferred. Shares storage; copies nothing.
  public func reshaped(_ newShape: [Int]) -> Tensor {
    var resolved = newShape
    if let unknown = newShape.firstIndex(of: -1) {
      let known = newShape.enumerated().filter { $0.offset != unknown }.reduce(1) {
        $0 * $1.element
      }
      precondition(known > 0 && count % known == 0, "cannot reshape \(shape) to \(newShape)")
      resolved[unknown] = count / known
    }
    precondition(Shape.count(resolved) == count, "cannot reshape \(shape) to \(newShape)")
    if resolved == shape { return self }
    let y = Tensor(shape: resolved, storage: storage)
    return y.recorded((self, { g in g.reshaped(self.shape) }))
  }

  /// The axes in a new order: axis `i` of the result is axis `axes[i]` of this tensor.
  public func permuted(_ axes: [Int]) -> Tensor {
    let axes = axes.map { Shape.normalize(axis: $0, rank: rank) }
    precondition(axes.sorted() == Array(0..<rank), "\(axes) is not a permutation of \(rank) axes")
    if axes == Array(0..<rank) { return self }
    let strides = Shape.strides(shape)
    let y = copied(strides: axes.map { strides[$0] }, shape: axes.map { shape[$0] })
    var inverse = axes
    for (position, axis) in axes.enumerated() { inverse[axis] = position }
    return y.recorded((self, { g in g.permuted(inverse) }))
  }

  /// This tensor with two axes swapped (by default the last two: the matrix transpose).
  public func transposed(_ first: Int = -2, _ second: Int = -1) -> Tensor {
    var axes = Array(0..<rank)
    axes.swapAt(Shape.normalize(axis: first, rank: rank), Shape.normalize(axis: second, rank: rank))
    return permuted(axes)
  }

  /// The elements at positions `range` along `axis`.
  public func sliced(along axis: Int, _ range: Range<Int>) -> Tensor {
    let axis = Shape.normalize(axis: axis, rank: rank)
    precondition(
      range.lowerBound >= 0 && range.upperBound <= shape[axis],
      "slice \(range) of axis length \(shape[axis])")
    var newShape = shape
    newShape[axis] = range.count
    let (outer, length, inner) = outerLengthInner(around: axis)
    let y = Tensor(
      shape: newShape,
      storage: storage.blocks(
        outer: outer, from: length * inner, range.lowerBound * inner..<range.upperBound * inner))
    return y.recorded(
      (
        self,
        { g in
          // Put the gradient back in place, with zeros where the slice left elements out.
          var before = self.shape
          var after = self.shape
          before[axis] = range.lowerBound
          after[axis] = self.shape[axis] - range.upperBound
          return concatenate(
            [Tensor.zeros(before, dtype: g.dtype), g, Tensor.zeros(after, dtype: g.dtype)],
            along: axis)
        }
      ))
  }

  /// Pieces of `sizes` along `axis`, which must add up to its length.
  public func split(along axis: Int, sizes: [Int]) -> [Tensor] {
    let axis = Shape.normalize(axis: axis, rank: rank)
    precondition(
      sizes.reduce(0, +) == shape[axis], "sizes \(sizes) do not add up to \(shape[axis])")
    var start = 0
    return sizes.map { size in
      defer { start += size }
      return sliced(along: axis, start..<start + size)
    }
  }
}

/// The tensors joined along `axis`; their other axes must agree.
public func concatenate(_ tensors: [Tensor], along axis: Int) -> Tensor {
  precondition(!tensors.isEmpty, "concatenate needs a tensor")
  let first = tensors[0]
  let axis = Shape.normalize(axis: axis, rank: first.rank)
  for tensor in tensors {
    var a = tensor.shape
    var b = first.shape
    a[axis] = 0
    b[axis] = 0
    precondition(a == b, "cannot concatenate \(first.shape) and \(tensor.shape) along axis \(axis)")
  }
  var shape = first.shape
  shape[axis] = tensors.reduce(0) { $0 + $1.shape[axis] }
  let (outer, _, inner) = first.outerLengthInner(around: axis)
  let y = Tensor(
    shape: shape,
    storage: Storage.interleaving(
      tensors.map(\.storage), outer: outer, blockSizes: tensors.map { $0.shape[axis] * inner }))
  var start = 0
  let edges = tensors.map { tensor in
    let range = start..<start + tensor.shape[axis]
    start += tensor.shape[axis]
    return (input: tensor, vectorJacobianProduct: { (g: Tensor) in g.sliced(along: axis, range) })
  }
  return y.recorded(edges: edges)
}

extension Storage {
  /// Viewing the elements as `outer` blocks of `blockSize`, the part `range` of each block.
  func blocks(outer: Int, from blockSize: Int, _ range: Range<Int>) -> Storage {
    func take<T>(_ values: [T]) -> [T] {
      makeArray(outer * range.count) { out in
        values.withUnsafeBufferPointer { source in
          guard let start = source.baseAddress, !range.isEmpty else { return }
          for o in 0..<outer {
            (out + o * range.count).initialize(
              from: start + o * blockSize + range.lowerBound, count: range.count)
          }
        }
      }
    }
    switch self {
    case .float32(let values): return .float32(take(values))
    case .float64(let values): return .float64(take(values))
    }
  }

  /// Joins `parts`, each viewed as `outer` blocks of its own size, block by block:
  /// block 0 of every part, then block 1 of every part, and so on.
  static func interleaving(_ parts: [Storage], outer: Int, blockSizes: [Int]) -> Storage {
    let total = blockSizes.reduce(0, +)
    func join<T>(_ arrays: [[T]]) -> [T] {
      makeArray(outer * total) { out in
        var offset = 0
        for (array, size) in zip(arrays, blockSizes) {
          array.withUnsafeBufferPointer { source in
            guard let start = source.baseAddress, size > 0 else { return }
            for o in 0..<outer {
              (out + o * total + offset).initialize(from: start + o * size, count: size)
            }
          }
          offset += size
        }
      }
    }
    switch parts[0] {
    case .float32:
      return .float32(
        join(
          parts.map {
            guard case .float32(let v) = $0 else { preconditionFailure("mixed element types") }
            return v
          }))
    case .float64:
      return .float64(
        join(
          parts.map {
            guard case .float64(let v) = $0 else { preconditionFailure("mixed element types") }
            return v
          }))
    }
  }
}
