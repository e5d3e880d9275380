import Foundation
import Kernels

/// The element type of a tensor: Float32 for training, Float64 for gradient checks.
public enum DType: String, Sendable, CaseIterable {
  case float32
  case float64
}

/// A tensor's elements, in one of the two element types.
///
/// Swift arrays share their buffer until one is written, so reshaping or detaching a
/// tensor copies nothing, and an optimizer updating a parameter in place never changes a
/// tensor that was saved for backward.
public enum Storage {
  case float32([Float])
  case float64([Double])

  /// The element type.
  public var dtype: DType {
    switch self {
    case .float32: .float32
    case .float64: .float64
    }
  }

  /// The number of elements.
  public var count: Int {
    switch self {
    case .float32(let values): values.count
    case .float64(let values): values.count
    }
  }

  /// The storage of `values`, whichever of the two element types they have: what a
  /// kernel written once for both returns.
  @inlinable
  public init<T: KernelScalar>(_ values: [T]) {
    // T is Float or Double (the kernels' only two types), so this reinterprets the array
    // as the one it already is, without copying (`as!` would copy it element by element
    // where the compiler cannot see that the types are equal).
    self =
      T.self == Float.self
      ? .float32(unsafeBitCast(values, to: [Float].self))
      : .float64(unsafeBitCast(values, to: [Double].self))
  }
}

/// An n-dimensional array of Float or Double, row-major and contiguous, that can take part
/// in automatic differentiation.
///
/// Operations on tensors record themselves on the active `Tape` when one of their inputs
/// `requiresGradient`; `Tape.gradients(of:)` then walks the tape backward. A tensor is a
/// reference type because the tape and the gradients refer to tensors by identity.
public final class Tensor {
  /// Axis lengths, outermost first; `[]` for a scalar.
  public let shape: [Int]
  /// The elements.
  public internal(set) var storage: Storage
  /// Whether gradients flow to this tensor. Set it on leaves (parameters, inputs) to
  /// differentiate with respect to them, or clear it to freeze a parameter: a frozen
  /// tensor gets no gradient and costs no backward work. Operation outputs have it set
  /// when they were recorded on a tape.
  public var requiresGradient: Bool

  /// A tensor of `shape` holding `storage`.
  public init(shape: [Int], storage: Storage, requiresGradient: Bool = false) {
    precondition(shape.allSatisfy { $0 >= 0 }, "negative axis length in \(shape)")
    precondition(
      Shape.count(shape) == storage.count,
      "shape \(shape) needs \(Shape.count(shape)) elements, got \(storage.count)")
    self.shape = shape
    self.storage = storage
    self.requiresGradient = requiresGradient
  }

  /// A Float32 tensor of `shape` with `scalars` in row-major order.
  public convenience init(shape: [Int], scalars: [Float], requiresGradient: Bool = false) {
    self.init(shape: shape, storage: .float32(scalars), requiresGradient: requiresGradient)
  }

  /// A Float64 tensor of `shape` with `scalars` in row-major order.
  public convenience init(shape: [Int], scalars: [Double], requiresGradient: Bool = false) {
    self.init(shape: shape, storage: .float64(scalars), requiresGradient: requiresGradient)
  }

  /// A tensor of `shape` and `dtype` with `scalars` (given as Double) in row-major order.
  public convenience init(
    shape: [Int], scalars: [Double], dtype: DType, requiresGradient: Bool = false
  ) {
    let storage: Storage =
      switch dtype {
      case .float32: .float32(scalars.map { Float($0) })
      case .float64: .float64(scalars)
      }
    self.init(shape: shape, storage: storage, requiresGradient: requiresGradient)
  }

  /// A scalar (shape `[]`).
  public convenience init(_ value: Double, dtype: DType = .float32) {
    self.init(shape: [], scalars: [value], dtype: dtype)
  }

  /// A tensor of `shape` filled with `value`.
  public static func full(_ value: Double, shape: [Int], dtype: DType = .float32) -> Tensor {
    let count = Shape.count(shape)
    switch dtype {
    case .float32:
      return Tensor(shape: shape, scalars: [Float](repeating: Float(value), count: count))
    case .float64:
      return Tensor(shape: shape, scalars: [Double](repeating: value, count: count))
    }
  }

  /// A tensor of zeros.
  public static func zeros(_ shape: [Int], dtype: DType = .float32) -> Tensor {
    full(0, shape: shape, dtype: dtype)
  }

  /// A tensor of ones.
  public static func ones(_ shape: [Int], dtype: DType = .float32) -> Tensor {
    full(1, shape: shape, dtype: dtype)
  }

  /// The element type.
  public var dtype: DType { storage.dtype }
  /// The number of elements.
  public var count: Int { storage.count }
  /// The number of axes.
  public var rank: Int { shape.count }

  /// The elements in row-major order, as Double.
  public var scalars: [Double] {
    switch storage {
    case .float32(let values): values.map { Double($0) }
    case .float64(let values): values
    }
  }

  /// The single element of a one-element tensor.
  public var item: Double {
    precondition(count == 1, "item of a tensor with \(count) elements")
    return scalars[0]
  }

  /// The elements as Float; the tensor must be Float32.
  public var floats: [Float] {
    guard case .float32(let values) = storage else { preconditionFailure("not a float32 tensor") }
    return values
  }

  /// The elements as Double; the tensor must be Float64.
  public var doubles: [Double] {
    guard case .float64(let values) = storage else { preconditionFailure("not a float64 tensor") }
    return values
  }

  /// The same elements, never differentiated: the result is not recorded and does not
  /// require a gradient, so gradients stop here. Shares storage; copies nothing.
  public func detached() -> Tensor {
    Tensor(shape: shape, storage: storage)
  }

  /// Replaces the elements (same shape and dtype), for loading weights.
  public func assign(_ newStorage: Storage) {
    precondition(
      newStorage.dtype == dtype && newStorage.count == count, "assign changes dtype or size")
    storage = newStorage
  }

  /// Lets `body` change a Float32 tensor's elements in place (an optimizer step). Tensors
  /// that share the storage (a reshaped view, a value saved on a tape) keep the old
  /// elements: the storage is copied first if it is shared.
  public func withMutableFloats<Result>(
    _ body: (UnsafeMutableBufferPointer<Float>) throws -> Result
  ) rethrows -> Result {
    guard case .float32(var values) = storage else { preconditionFailure("not a float32 tensor") }
    storage = .float32([])  // drop this tensor's reference, so `values` may be unique
    defer { storage = .float32(values) }
    return try values.withUnsafeMutableBufferPointer { try body($0) }
  }
}

extension Tensor: CustomStringConvertible {
  /// For example `Tensor[2, 3] float32 [0.1, 0.2, 0.3, …]`.
  public var description: String {
    let shown = scalars.prefix(8).map { String(format: "%.4g", $0) }.joined(separator: ", ")
    let more = count > 8 ? ", …" : ""
    return "Tensor\(shape) \(dtype.rawValue) [\(shown)\(more)]"
  }
}
