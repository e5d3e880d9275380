// Choosing between tensors elementwise, and changing element type.

/// `condition ≠ 0 ? a : b` elementwise, with broadcasting. The condition has no gradient;
/// each side's gradient is `g` where it was chosen and 0 elsewhere. A real select: an
/// infinity or NaN on the side not chosen never reaches the output.
public func select(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
  let y = Tensor.selected(condition, a, b)
  let zero = Tensor(0, dtype: y.dtype)
  return y.recorded(
    (a, { g in Tensor.selected(condition, g, zero).sumToShape(a.shape) }),
    (b, { g in Tensor.selected(condition, zero, g).sumToShape(b.shape) }))
}

extension Tensor {
  /// This tensor with `value` wherever `mask ≠ 0` (with broadcasting).
  public func maskedFill(_ mask: Tensor, with value: Double) -> Tensor {
    select(mask, Tensor(value, dtype: dtype), self)
  }

  /// This tensor in another element type. Its gradient is converted back.
  public func converted(to newType: DType) -> Tensor {
    if newType == dtype { return self }
    let y = Tensor(shape: shape, scalars: scalars, dtype: newType)
    return y.recorded((self, { g in g.converted(to: self.dtype) }))
  }
}

/// A straight-through estimator: the result has the value of `value`, but backward sends
/// its gradient, unchanged, to `gradientTarget` (and none to `value`). The two must have
/// the same shape.
///
/// This is `value + gradientTarget − stopGradient(gradientTarget)` without the rounding of
/// the two extra operations: the forward value is exactly `value`.
public func straightThrough(value: Tensor, gradientTo gradientTarget: Tensor) -> Tensor {
  precondition(
    value.shape == gradientTarget.shape,
    "straight-through of \(value.shape) and \(gradientTarget.shape)")
  return value.detached().recorded((gradientTarget, { g in g }))
}
