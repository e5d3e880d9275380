import Kernels

// Elementwise functions: y = f(x), and the vector-Jacobian product g · f'(x).
// Each f and its derivative f' stand side by side in `Kernels.UnaryFunction`.

extension Tensor {
  /// `f(x)` elementwise, recorded with its vector-Jacobian product `g · f'(x)`.
  public func applying(_ function: UnaryFunction) -> Tensor {
    let y = mapped(function)
    return y.recorded(
      (self, { g in self.mappedBackward(function, gradient: g) }), operation: function.description)
  }
}

/// `-x` elementwise.
public prefix func - (x: Tensor) -> Tensor { x.applying(.negate) }
/// `eˣ` elementwise.
public func exp(_ x: Tensor) -> Tensor { x.applying(.exp) }
/// The natural logarithm, elementwise.
public func log(_ x: Tensor) -> Tensor { x.applying(.log) }
/// `√x` elementwise.
public func sqrt(_ x: Tensor) -> Tensor { x.applying(.squareRoot) }
/// `1 / √x` elementwise.
public func rsqrt(_ x: Tensor) -> Tensor { x.applying(.reciprocalSquareRoot) }
/// The hyperbolic tangent, elementwise.
public func tanh(_ x: Tensor) -> Tensor { x.applying(.tanh) }
/// `1 / (1 + e⁻ˣ)` elementwise.
public func sigmoid(_ x: Tensor) -> Tensor { x.applying(.sigmoid) }
/// `x · sigmoid(x)` elementwise (SiLU, or swish).
public func silu(_ x: Tensor) -> Tensor { x.applying(.silu) }
/// `max(x, 0)` elementwise. Its derivative at 0 is taken as 0.
public func relu(_ x: Tensor) -> Tensor { x.applying(.relu) }
/// The exact GELU, `x · Φ(x)`, elementwise.
public func gelu(_ x: Tensor) -> Tensor { x.applying(.gelu) }
/// `log(1 + eˣ)` elementwise; its derivative is `sigmoid(x)`.
public func softplus(_ x: Tensor) -> Tensor { x.applying(.softplus) }
/// `xᵖ` elementwise, for a constant exponent.
public func pow(_ x: Tensor, _ exponent: Double) -> Tensor { x.applying(.power(exponent)) }
