import Autodiff
import Kernels

/// Mamba's selective scan, a recurrence over each sequence run channel by channel:
///
///     h_t = exp(Δ_t · A) ⊙ h_{t−1} + Δ_t · B_t · x_t,   h_{−1} = 0
///     y_t = ⟨C_t, h_t⟩ + D · x_t
///
/// `x` and `delta` (Δ, positive: Mamba passes its step sizes through softplus first) are
/// `[batch, length, channels]`; `a` is `[channels, state]` (negative: Mamba's
/// `−exp(A_log)`); `b` and `c` are `[batch, length, state]`; `d` is `[channels]`. The
/// result is `[batch, length, channels]`. Because A, B, C and Δ differ at every step the
/// recurrence cannot be a convolution; it is a loop, linear in the length.
///
/// Backward (`Kernels.selectiveScanBackward`), with `dh_t = g_t·C_t + exp(Δ_{t+1}A) ⊙ dh_{t+1}`
/// carried from the last step to the first: `dx_t = g_t·D + Σ_n dh_t·Δ_t·B_t`,
/// `dΔ_t = Σ_n dh_t ⊙ (h_{t−1} ⊙ exp(Δ_t A) ⊙ A + B_t·x_t)`,
/// `dA = Σ_t dh_t ⊙ h_{t−1} ⊙ exp(Δ_t A)·Δ_t`, `dB_t = Σ_channels dh_t·Δ_t·x_t`,
/// `dC_t = Σ_channels g_t·h_t`, `dD = Σ_t g_t·x_t`. `selectiveScanReference` is the same
/// function written with primitive operations.
public func selectiveScan(
  x: Tensor, delta: Tensor, a: Tensor, b: Tensor, c: Tensor, d: Tensor
) -> Tensor {
  precondition(x.rank == 3 && delta.shape == x.shape, "x and Δ are [batch, length, channels]")
  let layout = ScanLayout(
    batch: x.shape[0], length: x.shape[1], channels: x.shape[2], state: a.shape[1])
  precondition(a.shape == [layout.channels, layout.state], "A is [channels, state]")
  precondition(
    b.shape == [layout.batch, layout.length, layout.state] && c.shape == b.shape,
    "B and C are [batch, length, state]")
  precondition(d.shape == [layout.channels], "D is [channels]")
  let inputs = [x, delta, a, b, c, d]
  func forward<T: KernelScalar>(_ t: [[T]], _ y: UnsafeMutablePointer<T>) {
    Kernels.selectiveScan(
      x: t[0], delta: t[1], a: t[2], b: t[3], c: t[4], d: t[5], layout: layout, into: y)
  }
  let y = Tensor(
    shape: x.shape, storage: runKernel(inputs, count: x.count, float: forward, double: forward))
  return y.recorded(inputs: inputs) { g, _ in
    var gradients: [Storage] = []
    func backward<T: KernelScalar>(_ t: [[T]], _ dx: UnsafeMutablePointer<T>) {
      var dDelta = [T](repeating: 0, count: x.count)
      var dA = [T](repeating: 0, count: a.count)
      var dB = [T](repeating: 0, count: b.count)
      var dC = [T](repeating: 0, count: c.count)
      var dD = [T](repeating: 0, count: d.count)
      selectiveScanBackward(
        x: t[0], delta: t[1], a: t[2], b: t[3], c: t[4], d: t[5], gradient: t[6],
        layout: layout, dx: dx, dDelta: &dDelta, dA: &dA, dB: &dB, dC: &dC, dD: &dD)
      gradients = [dDelta, dA, dB, dC, dD].map(Storage.init)
    }
    let dx = runKernel(inputs + [g], count: x.count, float: backward, double: backward)
    return zip(inputs, [dx] + gradients).map {
      Tensor(shape: $0.shape, storage: $1)
    }
  }
}

/// `selectiveScan` written with primitive operations, one step at a time: what the fused
/// kernel computes, and the recurrence as the tape sees it.
public func selectiveScanReference(
  x: Tensor, delta: Tensor, a: Tensor, b: Tensor, c: Tensor, d: Tensor
) -> Tensor {
  let (batch, length, channels, state) = (x.shape[0], x.shape[1], x.shape[2], a.shape[1])
  func step(_ tensor: Tensor, _ t: Int, _ width: Int) -> Tensor {
    tensor.sliced(along: 1, t..<t + 1).reshaped([batch, width])
  }
  var h = Tensor.zeros([batch, channels, state], dtype: x.dtype)
  var outputs: [Tensor] = []
  for t in 0..<length {
    let (xt, dt) = (step(x, t, channels), step(delta, t, channels))
    let (bt, ct) = (step(b, t, state), step(c, t, state))
    let decay = exp(dt.reshaped([batch, channels, 1]) * a)
    h = decay * h + (dt * xt).reshaped([batch, channels, 1]) * bt.reshaped([batch, 1, state])
    let yt = (h * ct.reshaped([batch, 1, state])).sum(axes: [2]) + d * xt
    outputs.append(yt.reshaped([batch, 1, channels]))
  }
  return concatenate(outputs, along: 1)
}
