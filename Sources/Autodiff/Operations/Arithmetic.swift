import Kernels

// Arithmetic with NumPy broadcasting. The output has the broadcast shape; each input's
// gradient is the output gradient's share, summed back to the input's own shape by
// `sumToShape` (the one place where broadcasting is undone).

extension Tensor {
  /// `f(a, b)` elementwise with broadcasting, recorded with both vector-Jacobian products.
  static func arithmetic(_ function: BinaryFunction, _ a: Tensor, _ b: Tensor) -> Tensor {
    let y = combined(function, a, b)
    switch function {
    case .add:
      return y.recorded(
        (a, { g in g.sumToShape(a.shape) }),
        (b, { g in g.sumToShape(b.shape) }), operation: "add")
    case .subtract:
      return y.recorded(
        (a, { g in g.sumToShape(a.shape) }),
        (b, { g in (-g).sumToShape(b.shape) }), operation: "subtract")
    case .multiply:
      return y.recorded(
        (a, { g in (g * b).sumToShape(a.shape) }),
        (b, { g in (g * a).sumToShape(b.shape) }), operation: "multiply")
    case .divide:
      // d(a/b)/db = -a/b² = -y/b.
      return y.recorded(
        (a, { g in (g / b).sumToShape(a.shape) }),
        (b, { g in (-(g * y) / b).sumToShape(b.shape) }), operation: "divide")
    }
  }

  /// This tensor as a scalar of its element type, for mixing with numbers.
  func scalar(_ value: Double) -> Tensor { Tensor(value, dtype: dtype) }
}

/// `a + b` with broadcasting.
public func + (a: Tensor, b: Tensor) -> Tensor { .arithmetic(.add, a, b) }
/// `a - b` with broadcasting.
public func - (a: Tensor, b: Tensor) -> Tensor { .arithmetic(.subtract, a, b) }
/// `a * b` elementwise with broadcasting.
public func * (a: Tensor, b: Tensor) -> Tensor { .arithmetic(.multiply, a, b) }
/// `a / b` elementwise with broadcasting.
public func / (a: Tensor, b: Tensor) -> Tensor { .arithmetic(.divide, a, b) }

/// `a + b` for a number `b`.
public func + (a: Tensor, b: Double) -> Tensor { a + a.scalar(b) }
/// `a + b` for a number `a`.
public func + (a: Double, b: Tensor) -> Tensor { b.scalar(a) + b }
/// `a - b` for a number `b`.
public func - (a: Tensor, b: Double) -> Tensor { a - a.scalar(b) }
/// `a - b` for a number `a`.
public func - (a: Double, b: Tensor) -> Tensor { b.scalar(a) - b }
/// `a * b` for a number `b`.
public func * (a: Tensor, b: Double) -> Tensor { a * a.scalar(b) }
/// `a * b` for a number `a`.
public func * (a: Double, b: Tensor) -> Tensor { b.scalar(a) * b }
/// `a / b` for a number `b`.
public func / (a: Tensor, b: Double) -> Tensor { a / a.scalar(b) }
/// `a / b` for a number `a`.
public func / (a: Double, b: Tensor) -> Tensor { b.scalar(a) / b }
