import Autodiff
import Kernels

/// RMSNorm over the last axis, `x · w / √(mean(x²) + ε)`, in one fused kernel each way.
/// `rmsNormReference` is the same function written with primitive operations.
public func rmsNorm(_ x: Tensor, weight: Tensor, epsilon: Double) -> Tensor {
  let columns = x.shape.last!
  let rows = x.count / columns
  precondition(weight.shape == [columns], "RMSNorm weight \(weight.shape) for rows of \(columns)")
  // The output, and each row's 1 / RMS for the backward pass.
  func forward<T: KernelScalar>(
    _ inputs: [[T]], _ y: UnsafeMutablePointer<T>, _ inverseRMS: UnsafeMutablePointer<T>
  ) {
    rmsNormRows(
      inputs[0], weight: inputs[1], epsilon: epsilon, rows: rows, columns: columns, into: y,
      inverseRMS: inverseRMS)
  }
  let (y, inverseRMS) = runKernel(
    [x, weight], counts: (x.count, rows), float: forward, double: forward)
  let saved = Tensor(shape: [rows], storage: inverseRMS)
  return Tensor(shape: x.shape, storage: y).recorded(inputs: [x, weight]) { g, needed in
    func backward<T: KernelScalar>(
      _ t: [[T]], _ dx: UnsafeMutablePointer<T>, _ dw: UnsafeMutablePointer<T>
    ) {
      rmsNormRowsBackward(
        t[0], weight: t[1], inverseRMS: t[2], gradient: t[3], rows: rows, columns: columns,
        dx: needed[0] ? dx : nil, dWeight: needed[1] ? dw : nil)
    }
    let (dx, dWeight) = runKernel(
      [x, weight, saved, g], counts: (needed[0] ? x.count : 0, needed[1] ? columns : 0),
      float: backward, double: backward)
    return [
      needed[0] ? Tensor(shape: x.shape, storage: dx) : nil,
      needed[1] ? Tensor(shape: [columns], storage: dWeight) : nil,
    ]
  }
}

/// `rmsNorm` written with primitive operations: what the fused kernel computes.
public func rmsNormReference(_ x: Tensor, weight: Tensor, epsilon: Double) -> Tensor {
  x * rsqrt((x * x).mean(axes: [-1], keepDimensions: true) + epsilon) * weight
}
