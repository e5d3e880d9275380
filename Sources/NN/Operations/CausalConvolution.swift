import Autodiff
import Kernels

/// A causal depthwise convolution along the sequence, Mamba's `conv1d`: each channel mixes
/// its own last `kernel` steps, `y_t = bias + Σ_j w_j · x_{t−(kernel−1)+j}`, with zeros
/// before the first step, so no step sees a later one.
///
/// `x` is `[batch, length, channels]`, `weight` is `[channels, kernel]` (PyTorch stores
/// `[channels, 1, kernel]`), `bias` is `[channels]` or nil. Backward
/// (`Kernels.causalConvolutionBackward`): `dx_s = Σ_j g_{s+(kernel−1)−j} · w_j`,
/// `dw_j = Σ g_t · x_{t−(kernel−1)+j}` over every sequence and step, `dbias = Σ g`.
/// `causalConvolutionReference` is the same function written with primitive operations.
public func causalConvolution(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
  precondition(x.rank == 3, "x is [batch, length, channels]")
  let (batch, length, channels) = (x.shape[0], x.shape[1], x.shape[2])
  precondition(weight.rank == 2 && weight.shape[0] == channels, "weight is [channels, kernel]")
  let kernel = weight.shape[1]
  let bias = bias ?? Tensor.zeros([channels], dtype: x.dtype)
  precondition(bias.shape == [channels], "bias is [channels]")
  func forward<T: KernelScalar>(_ t: [[T]], _ y: UnsafeMutablePointer<T>) {
    Kernels.causalConvolution(
      t[0], weight: t[1], bias: t[2], batch: batch, length: length, channels: channels,
      kernel: kernel, into: y)
  }
  let y = Tensor(
    shape: x.shape,
    storage: runKernel([x, weight, bias], count: x.count, float: forward, double: forward))
  return y.recorded(inputs: [x, weight, bias]) { g, _ in
    var gradients: [Storage] = []
    func backward<T: KernelScalar>(_ t: [[T]], _ dx: UnsafeMutablePointer<T>) {
      var dWeight = [T](repeating: 0, count: weight.count)
      var dBias = [T](repeating: 0, count: channels)
      causalConvolutionBackward(
        t[0], weight: t[1], gradient: t[2], batch: batch, length: length, channels: channels,
        kernel: kernel, dx: dx, dWeight: &dWeight, dBias: &dBias)
      gradients = [Storage(dWeight), Storage(dBias)]
    }
    let dx = runKernel([x, weight, g], count: x.count, float: backward, double: backward)
    return [
      Tensor(shape: x.shape, storage: dx), Tensor(shape: weight.shape, storage: gradients[0]),
      Tensor(shape: [channels], storage: gradients[1]),
    ]
  }
}

/// `causalConvolution` written with primitive operations: the bias plus, for each tap j,
/// the input shifted `kernel − 1 − j` steps later (zeros shifted in) times that tap.
public func causalConvolutionReference(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
  let (batch, length, channels) = (x.shape[0], x.shape[1], x.shape[2])
  let kernel = weight.shape[1]
  var y =
    bias.map { $0.reshaped([1, 1, channels]) } ?? Tensor.zeros([1, 1, channels], dtype: x.dtype)
  for j in 0..<kernel {
    let shift = kernel - 1 - j
    guard shift < length else { continue }
    let shifted =
      shift == 0
      ? x
      : concatenate(
        [
          Tensor.zeros([batch, shift, channels], dtype: x.dtype),
          x.sliced(along: 1, 0..<length - shift),
        ],
        along: 1)
    y = y + shifted * weight.sliced(along: 1, j..<j + 1).reshaped([1, 1, channels])
  }
  return y
}
