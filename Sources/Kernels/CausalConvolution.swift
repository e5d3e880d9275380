/// A causal depthwise convolution along the sequence (Mamba's `conv1d`): each channel
/// mixes its own last `kernel` steps,
///
///     y_t = bias + Σ_{j<kernel} w_j · x_{t−(kernel−1)+j}     (x before the start is 0)
///
/// `x` and `y` are `[batch, length, channels]`, `weight` is `[channels, kernel]` (PyTorch's
/// `[channels, 1, kernel]`), `bias` is `[channels]`. No step sees a later one.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func causalConvolution<T: KernelScalar>(
  _ x: UnsafePointer<T>, weight: UnsafePointer<T>, bias: UnsafePointer<T>, batch: Int,
  length: Int, channels: Int, kernel: Int, into y: UnsafeMutablePointer<T>
) {
  forEachChunk(batch * length, grain: rowsPerChunk(channels * kernel)) { steps in
    for step in steps {
      let t = step % length
      for channel in 0..<channels {
        var sum = bias[channel]
        for j in 0..<kernel where t - (kernel - 1) + j >= 0 {
          sum += weight[channel * kernel + j] * x[(step - (kernel - 1) + j) * channels + channel]
        }
        y[step * channels + channel] = sum
      }
    }
  }
}

/// The backward pass of `causalConvolution`, given `g`, the gradient of its output:
///
///     dx_s = Σ_j g_{s+(kernel−1)−j} · w_j     (steps past the end give nothing)
///     dw_j = Σ_{sequences, t} g_t · x_{t−(kernel−1)+j}        dbias = Σ g
@_specialize(where T == Float)
@_specialize(where T == Double)
public func causalConvolutionBackward<T: KernelScalar>(
  _ x: UnsafePointer<T>, weight: UnsafePointer<T>, gradient g: UnsafePointer<T>, batch: Int,
  length: Int, channels: Int, kernel: Int, dx: UnsafeMutablePointer<T>,
  dWeight: UnsafeMutablePointer<T>, dBias: UnsafeMutablePointer<T>
) {
  forEachChunk(channels, grain: 1) { range in
    for channel in range {
      var bias = T(0)
      for j in 0..<kernel { dWeight[channel * kernel + j] = 0 }
      for sequence in 0..<batch {
        for t in 0..<length {
          let step = sequence * length + t
          let gt = g[step * channels + channel]
          bias += gt
          var input = T(0)
          for j in 0..<kernel {
            if t - (kernel - 1) + j >= 0 {
              dWeight[channel * kernel + j] +=
                gt * x[(step - (kernel - 1) + j) * channels + channel]
            }
            if t + (kernel - 1) - j < length {
              input +=
                g[(step + (kernel - 1) - j) * channels + channel] * weight[channel * kernel + j]
            }
          }
          dx[step * channels + channel] = input
        }
      }
      dBias[channel] = bias
    }
  }
}
