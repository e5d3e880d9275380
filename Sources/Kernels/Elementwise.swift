/// A function applied to every element, with its derivative beside it.
public enum UnaryFunction: Sendable, Equatable, CustomStringConvertible {
  case negate
  case exp
  case log
  case squareRoot
  case reciprocalSquareRoot
  case tanh
  case sigmoid
  /// `x · sigmoid(x)`, also called swish.
  case silu
  case relu
  /// The exact GELU, `x · Φ(x)` with Φ the standard normal distribution function.
  case gelu
  /// `log(1 + eˣ)`, a smooth ReLU that is always positive (Mamba's step size Δ).
  case softplus
  /// `x^p` for a fixed exponent `p`.
  case power(Double)

  /// The function's name, as in `tinymixer gradcheck`'s table.
  public var description: String {
    switch self {
    case .negate: "negate"
    case .exp: "exp"
    case .log: "log"
    case .squareRoot: "sqrt"
    case .reciprocalSquareRoot: "rsqrt"
    case .tanh: "tanh"
    case .sigmoid: "sigmoid"
    case .silu: "silu"
    case .relu: "relu"
    case .gelu: "gelu"
    case .softplus: "softplus"
    case .power(let p): "pow \(p)"
    }
  }

  /// `f(x)` and `f'(x)`. A loop that needs only one of them lets the optimizer drop the other.
  @inline(__always)
  func valueAndDerivative<T: KernelScalar>(_ x: T) -> (value: T, derivative: T) {
    switch self {
    case .negate:
      return (-x, -1)
    case .exp:
      let y = T.exp(x)
      return (y, y)
    case .log:
      return (T.log(x), 1 / x)
    case .squareRoot:
      let y = x.squareRoot()
      return (y, 1 / (2 * y))
    case .reciprocalSquareRoot:
      let y = 1 / x.squareRoot()
      return (y, -y * y * y / 2)
    case .tanh:
      let y = T.tanh(x)
      return (y, 1 - y * y)
    case .sigmoid:
      let y = logistic(x)
      return (y, y * (1 - y))
    case .silu:
      let s = logistic(x)
      return (x * s, s * (1 + x * (1 - s)))
    case .relu:
      return x > 0 ? (x, 1) : (0, 0)
    case .gelu:
      let cdf = (1 + T.erf(x * T(0.7071067811865476))) / 2
      let pdf = T.exp(-x * x / 2) * T(0.3989422804014327)
      return (x * cdf, cdf + x * pdf)
    case .softplus:
      // max(x, 0) + log(1 + e^−|x|): no exponent overflows, and the derivative is σ(x).
      return (Swift.max(x, 0) + T.log(1 + T.exp(-Swift.abs(x))), logistic(x))
    case .power(let exponent):
      let p = T(exponent)
      return (T.pow(x, p), p * T.pow(x, p - 1))
    }
  }
}

/// The logistic function, computed without overflow for large `|x|`.
@inline(__always)
func logistic<T: KernelScalar>(_ x: T) -> T {
  if x >= 0 { return 1 / (1 + T.exp(-x)) }
  let e = T.exp(x)
  return e / (1 + e)
}

/// `y[i] = f(x[i])`.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func map<T: KernelScalar>(
  _ function: UnaryFunction, _ x: UnsafePointer<T>, into y: UnsafeMutablePointer<T>,
  count: Int
) { mapLoop(function, x, y, count) }

/// `dx[i] = g[i] · f'(x[i])`: the backward pass of `map`.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func mapBackward<T: KernelScalar>(
  _ function: UnaryFunction, _ x: UnsafePointer<T>, gradient g: UnsafePointer<T>,
  into dx: UnsafeMutablePointer<T>, count: Int
) { mapBackwardLoop(function, x, g, dx, count) }

private func mapLoop<T: KernelScalar>(
  _ function: UnaryFunction, _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, _ count: Int
) {
  forEachChunk(count, grain: elementwiseGrain) { range in
    // SiLU, Mamba's activation, 16 lanes at a time (the vector exponential); the rest
    // element by element.
    guard function == .silu else {
      for i in range { y[i] = function.valueAndDerivative(x[i]).value }
      return
    }
    var step = SiLUStep(x: x, y: y)
    forEachVector(in: range, &step)
  }
}

/// 16 elements of SiLU, `y = x · sigmoid(x)`.
private struct SiLUStep<T: KernelScalar>: VectorStep {
  let x: UnsafePointer<T>
  let y: UnsafeMutablePointer<T>

  @inline(__always) func callAsFunction(_ i: Int, lanes: Int) {
    let v = loadVector(x + i, count: lanes)
    storeVector(v * sigmoid(v), y + i, count: lanes)
  }
}

private func mapBackwardLoop<T: KernelScalar>(
  _ function: UnaryFunction, _ x: UnsafePointer<T>, _ g: UnsafePointer<T>,
  _ dx: UnsafeMutablePointer<T>, _ count: Int
) {
  forEachChunk(count, grain: elementwiseGrain) { range in
    guard function == .silu else {
      for i in range { dx[i] = g[i] * function.valueAndDerivative(x[i]).derivative }
      return
    }
    var step = SiLUBackwardStep(x: x, g: g, dx: dx)
    forEachVector(in: range, &step)
  }
}

/// 16 elements of SiLU's backward pass, `dx = g · s · (1 + x · (1 − s))` with s = sigmoid(x).
private struct SiLUBackwardStep<T: KernelScalar>: VectorStep {
  let x: UnsafePointer<T>
  let g: UnsafePointer<T>
  let dx: UnsafeMutablePointer<T>

  @inline(__always) func callAsFunction(_ i: Int, lanes: Int) {
    let v = loadVector(x + i, count: lanes)
    let s = sigmoid(v)
    storeVector(loadVector(g + i, count: lanes) * s * (1 + v * (1 - s)), dx + i, count: lanes)
  }
}

/// An arithmetic operation on two elements.
public enum BinaryFunction: Sendable, Equatable {
  case add, subtract, multiply, divide
}

/// `out = f(a, b)` over a contiguous output of `shape`, reading `a` and `b` through their
/// strides (0 along a broadcast axis).
@_specialize(where T == Float)
@_specialize(where T == Double)
public func combine<T: KernelScalar>(
  _ function: BinaryFunction, _ a: UnsafePointer<T>, strides aStrides: [Int],
  _ b: UnsafePointer<T>, strides bStrides: [Int], into out: UnsafeMutablePointer<T>,
  shape: [Int]
) { combineLoop(function, a, aStrides, b, bStrides, out, shape) }

private func combineLoop<T: KernelScalar>(
  _ function: BinaryFunction, _ a: UnsafePointer<T>, _ aStrides: [Int],
  _ b: UnsafePointer<T>, _ bStrides: [Int], _ out: UnsafeMutablePointer<T>, _ shape: [Int]
) {
  StridedWalk(shape: shape, strides: [aStrides, bStrides]).forEachRun {
    start, offsets, length, steps in
    let a = a + offsets.0
    let b = b + offsets.1
    let out = out + start
    // One plain loop per operation and layout, so that each compiles to vector code
    // (a closure for the operation would cost a call per element).
    switch (function, steps.0, steps.1) {
    case (.add, 1, 1): for i in 0..<length { out[i] = a[i] + b[i] }
    case (.subtract, 1, 1): for i in 0..<length { out[i] = a[i] - b[i] }
    case (.multiply, 1, 1): for i in 0..<length { out[i] = a[i] * b[i] }
    case (.divide, 1, 1): for i in 0..<length { out[i] = a[i] / b[i] }
    case (.add, 1, 0): for i in 0..<length { out[i] = a[i] + b[0] }
    case (.subtract, 1, 0): for i in 0..<length { out[i] = a[i] - b[0] }
    case (.multiply, 1, 0): for i in 0..<length { out[i] = a[i] * b[0] }
    case (.divide, 1, 0): for i in 0..<length { out[i] = a[i] / b[0] }
    case (.add, 0, 1): for i in 0..<length { out[i] = a[0] + b[i] }
    case (.subtract, 0, 1): for i in 0..<length { out[i] = a[0] - b[i] }
    case (.multiply, 0, 1): for i in 0..<length { out[i] = a[0] * b[i] }
    case (.divide, 0, 1): for i in 0..<length { out[i] = a[0] / b[i] }
    default:
      for i in 0..<length { out[i] = function.apply(a[i * steps.0], b[i * steps.1]) }
    }
  }
}

extension BinaryFunction {
  /// `a ∘ b` for one pair of elements.
  @inline(__always)
  func apply<T: KernelScalar>(_ a: T, _ b: T) -> T {
    switch self {
    case .add: a + b
    case .subtract: a - b
    case .multiply: a * b
    case .divide: a / b
    }
  }
}

/// `out = condition ≠ 0 ? a : b`, elementwise with broadcasting strides.
///
/// A real select, not `c·a + (1 − c)·b`, so an infinity or NaN on the side not chosen
/// never reaches the output.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func select<T: KernelScalar>(
  _ condition: UnsafePointer<T>, strides conditionStrides: [Int],
  _ a: UnsafePointer<T>, strides aStrides: [Int],
  _ b: UnsafePointer<T>, strides bStrides: [Int],
  into out: UnsafeMutablePointer<T>, shape: [Int]
) { selectLoop(condition, conditionStrides, a, aStrides, b, bStrides, out, shape) }

private func selectLoop<T: KernelScalar>(
  _ condition: UnsafePointer<T>, _ conditionStrides: [Int], _ a: UnsafePointer<T>,
  _ aStrides: [Int], _ b: UnsafePointer<T>, _ bStrides: [Int],
  _ out: UnsafeMutablePointer<T>, _ shape: [Int]
) {
  StridedWalk(shape: shape, strides: [conditionStrides, aStrides, bStrides]).forEachRun {
    start, offsets, length, steps in
    for i in 0..<length {
      let chosen = condition[offsets.0 + i * steps.0] != 0
      out[start + i] = chosen ? a[offsets.1 + i * steps.1] : b[offsets.2 + i * steps.2]
    }
  }
}

/// Copies `x`, read through `strides`, into the contiguous `out` of `shape`: a transpose
/// or permutation (permuted strides) or a broadcast (zero strides).
@_specialize(where T == Float)
@_specialize(where T == Double)
public func copy<T: KernelScalar>(
  _ x: UnsafePointer<T>, strides: [Int], into out: UnsafeMutablePointer<T>,
  shape: [Int]
) { copyLoop(x, strides, out, shape) }

private func copyLoop<T: KernelScalar>(
  _ x: UnsafePointer<T>, _ strides: [Int], _ out: UnsafeMutablePointer<T>, _ shape: [Int]
) {
  StridedWalk(shape: shape, strides: [strides]).forEachRun { start, offsets, length, steps in
    let x = x + offsets.0
    let out = out + start
    if steps.0 == 1 {
      out.update(from: x, count: length)
    } else {
      for i in 0..<length { out[i] = x[i * steps.0] }
    }
  }
}

/// SwiGLU's gate: `out = silu(gate) ⊙ up`.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func swiglu<T: KernelScalar>(
  gate: UnsafePointer<T>, up: UnsafePointer<T>, into out: UnsafeMutablePointer<T>,
  count: Int
) { swigluLoop(gate, up, out, count) }

/// Backward of `swiglu` given the gradient `g` of `out`:
/// `dGate = g ⊙ up ⊙ silu'(gate)`, `dUp = g ⊙ silu(gate)`.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func swigluBackward<T: KernelScalar>(
  gate: UnsafePointer<T>, up: UnsafePointer<T>, gradient g: UnsafePointer<T>,
  dGate: UnsafeMutablePointer<T>, dUp: UnsafeMutablePointer<T>, count: Int
) { swigluBackwardLoop(gate, up, g, dGate, dUp, count) }

/// `sigmoid(x)` on 16 lanes, as `1 / (1 + e⁻ˣ)`: for very negative x the exponential
/// saturates and the result is 0, never NaN.
@inline(__always)
func sigmoid<T: KernelScalar>(_ x: SIMD16<T>) -> SIMD16<T> { 1 / (1 + T.exp(-x)) }

private func swigluLoop<T: KernelScalar>(
  _ gate: UnsafePointer<T>, _ up: UnsafePointer<T>, _ out: UnsafeMutablePointer<T>, _ count: Int
) {
  forEachChunk(count, grain: elementwiseGrain) { range in
    var step = SwiGLUStep(gate: gate, up: up, out: out)
    forEachVector(in: range, &step)
  }
}

/// 16 elements of `swiglu`.
private struct SwiGLUStep<T: KernelScalar>: VectorStep {
  let gate: UnsafePointer<T>
  let up: UnsafePointer<T>
  let out: UnsafeMutablePointer<T>

  @inline(__always) func callAsFunction(_ i: Int, lanes: Int) {
    let g = loadVector(gate + i, count: lanes)
    let u = loadVector(up + i, count: lanes)
    storeVector(g * sigmoid(g) * u, out + i, count: lanes)
  }
}

private func swigluBackwardLoop<T: KernelScalar>(
  _ gate: UnsafePointer<T>, _ up: UnsafePointer<T>, _ gradient: UnsafePointer<T>,
  _ dGate: UnsafeMutablePointer<T>, _ dUp: UnsafeMutablePointer<T>, _ count: Int
) {
  forEachChunk(count, grain: elementwiseGrain) { range in
    var step = SwiGLUBackwardStep(
      gate: gate, up: up, gradient: gradient, dGate: dGate, dUp: dUp)
    forEachVector(in: range, &step)
  }
}

/// 16 elements of `swigluBackward`.
private struct SwiGLUBackwardStep<T: KernelScalar>: VectorStep {
  let gate: UnsafePointer<T>
  let up: UnsafePointer<T>
  let gradient: UnsafePointer<T>
  let dGate: UnsafeMutablePointer<T>
  let dUp: UnsafeMutablePointer<T>

  @inline(__always) func callAsFunction(_ i: Int, lanes: Int) {
    let g = loadVector(gate + i, count: lanes)
    let u = loadVector(up + i, count: lanes)
    let d = loadVector(gradient + i, count: lanes)
    let s = sigmoid(g)
    // silu(g) = g·s and silu'(g) = s · (1 + g · (1 − s)).
    storeVector(d * u * s * (1 + g * (1 - s)), dGate + i, count: lanes)
    storeVector(d * g * s, dUp + i, count: lanes)
  }
}
