import Autodiff
import Kernels

/// SwiGLU's gating, `silu(gate) ⊙ up`, in one fused kernel each way.
public func swiglu(gate: Tensor, up: Tensor) -> Tensor {
  precondition(gate.shape == up.shape, "SwiGLU halves \(gate.shape) and \(up.shape)")
  func forward<T: KernelScalar>(_ t: [[T]], _ out: UnsafeMutablePointer<T>) {
    Kernels.swiglu(gate: t[0], up: t[1], into: out, count: gate.count)
  }
  let output = Tensor(
    shape: gate.shape,
    storage: runKernel([gate, up], count: gate.count, float: forward, double: forward))
  return output.recorded(inputs: [gate, up]) { g, _ in
    // Both written whole by the kernel, so not zeroed first (3 MB a layer of the bench model).
    func backward<T: KernelScalar>(
      _ t: [[T]], _ dg: UnsafeMutablePointer<T>, _ du: UnsafeMutablePointer<T>
    ) {
      swigluBackward(gate: t[0], up: t[1], gradient: t[2], dGate: dg, dUp: du, count: gate.count)
    }
    let (dGate, dUp) = runKernel(
      [gate, up, g], counts: (gate.count, gate.count), float: backward, double: backward)
    return [Tensor(shape: gate.shape, storage: dGate), Tensor(shape: gate.shape, storage: dUp)]
  }
}

/// `swiglu` written with primitive operations.
public func swigluReference(gate: Tensor, up: Tensor) -> Tensor { silu(gate) * up }
