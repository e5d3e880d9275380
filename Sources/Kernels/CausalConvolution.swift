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
  // dx: row by row (a row's channels are contiguous), each from the later steps' gradients.
  forEachChunk(batch * length, grain: rowsPerChunk(channels * kernel)) { steps in
    for step in steps {
      let t = step % length
      for channel in 0..<channels {
        var input = T(0)
        for j in 0..<kernel where t + (kernel - 1) - j < length {
          input += g[(step + (kernel - 1) - j) * channels + channel] * weight[channel * kernel + j]
        }
        dx[step * channels + channel] = input
      }
    }
  }
  // The taps' and the bias's gradients: sums over every step, in order, 16 channels at a
  // time; the threads share out the channels, so no sum depends on the thread count.
  forEachChunk((channels + 15) / 16, grain: 1) { pieces in
    var taps = [Vector<T>](repeating: .zero, count: kernel)
    for piece in pieces {
      let (first, lanes) = (16 * piece, min(16, channels - 16 * piece))
      var bias = Vector<T>.zero
      for j in 0..<kernel { taps[j] = .zero }
      for step in 0..<(batch * length) {
        let t = step % length
        let gradient = loadVector(g + step * channels + first, count: lanes)
        bias += gradient
        for j in 0..<kernel where t - (kernel - 1) + j >= 0 {
          taps[j] +=
            gradient * loadVector(x + (step - (kernel - 1) + j) * channels + first, count: lanes)
        }
      }
      storeVector(bias, dBias + first, count: lanes)
      for lane in 0..<lanes {
        for j in 0..<kernel { dWeight[(first + lane) * kernel + j] = taps[j][lane] }
      }
    }
  }
}
