/// Shape arithmetic: element counts, strides and NumPy broadcasting.
///
/// A shape lists axis lengths, outermost first; `[]` is a scalar. Tensors are row-major
/// and contiguous, so the last axis has stride 1.
public enum Shape {
  /// The number of elements of a tensor of `shape`.
  public static func count(_ shape: [Int]) -> Int { shape.reduce(1, *) }

  /// Row-major strides of a contiguous tensor of `shape`.
  public static func strides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var stride = 1
    for axis in shape.indices.reversed() {
      strides[axis] = stride
      stride *= shape[axis]
    }
    return strides
  }

  /// The shape two shapes broadcast to, by NumPy's rule: align the shapes at their last
  /// axis; along each axis the lengths must be equal or one of them 1 (a missing axis
  /// counts as 1), and the result takes the larger.
  public static func broadcast(_ a: [Int], _ b: [Int]) -> [Int] {
    let rank = max(a.count, b.count)
    let a = [Int](repeating: 1, count: rank - a.count) + a
    let b = [Int](repeating: 1, count: rank - b.count) + b
    return zip(a, b).map { x, y in
      precondition(x == y || x == 1 || y == 1, "shapes \(a) and \(b) do not broadcast")
      return max(x, y)
    }
  }

  /// Strides that read a contiguous tensor of `shape` as if it had the larger shape
  /// `target`: 0 along every axis it is broadcast over.
  public static func broadcastStrides(of shape: [Int], to target: [Int]) -> [Int] {
    precondition(shape.count <= target.count, "cannot broadcast \(shape) to \(target)")
    let own = strides(shape)
    let offset = target.count - shape.count
    return target.indices.map { axis in
      guard axis >= offset else { return 0 }
      let length = shape[axis - offset]
      precondition(length == target[axis] || length == 1, "cannot broadcast \(shape) to \(target)")
      return length == 1 && target[axis] != 1 ? 0 : own[axis - offset]
    }
  }

  /// `axis` counted from the front, allowing negative axes counted from the back.
  public static func normalize(axis: Int, rank: Int) -> Int {
    let normalized = axis < 0 ? axis + rank : axis
    precondition(normalized >= 0 && normalized < rank, "axis \(axis) out of range for rank \(rank)")
    return normalized
  }
}
