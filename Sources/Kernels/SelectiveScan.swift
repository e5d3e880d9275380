/// The shape of a selective scan: `batch` sequences of `length` steps, each step a vector
/// of `channels` inputs, and a state of `state` numbers per channel.
public struct ScanLayout: Sendable, Equatable {
  /// Sequences, steps per sequence, channels and state size.
  public var batch: Int, length: Int, channels: Int, state: Int

  /// A layout of these sizes.
  public init(batch: Int, length: Int, channels: Int, state: Int) {
    (self.batch, self.length, self.channels, self.state) = (batch, length, channels, state)
  }
}

/// Mamba's selective scan (its S6 layer) for every sequence and channel:
///
///     h_t = exp(Δ_t · A) ⊙ h_{t−1} + Δ_t · B_t · x_t,   h_{−1} = 0
///     y_t = ⟨C_t, h_t⟩ + D · x_t
///
/// `x` and `delta` (Δ, already positive) are `[batch, length, channels]`; `a` (A) is
/// `[channels, state]`; `b` and `c` (B, C) are `[batch, length, state]`, shared by the
/// channels; `d` is `[channels]`. Each channel runs its own state of `state` numbers,
/// step after step: the work is linear in the length. Writes `y`, `[batch, length,
/// channels]`.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func selectiveScan<T: KernelScalar>(
  x: UnsafePointer<T>, delta: UnsafePointer<T>, a: UnsafePointer<T>, b: UnsafePointer<T>,
  c: UnsafePointer<T>, d: UnsafePointer<T>, layout: ScanLayout, into y: UnsafeMutablePointer<T>
) {
  forEachChunk(layout.batch * layout.channels, grain: 64) { units in
    // A state of 16, Mamba's usual size, runs a copy of the loop that knows it, so that its
    // vectors load whole, with no code for a short last piece.
    if layout.state == 16 {
      scanUnits(units, x, delta, a, b, c, d, y, layout, n: 16)
    } else {
      scanUnits(units, x, delta, a, b, c, d, y, layout, n: layout.state)
    }
  }
}

/// The forward scan of the sequence-and-channel pairs `units`, with a state of `n`.
@inline(__always)
private func scanUnits<T: KernelScalar>(
  _ units: Range<Int>, _ x: UnsafePointer<T>, _ delta: UnsafePointer<T>, _ a: UnsafePointer<T>,
  _ b: UnsafePointer<T>, _ c: UnsafePointer<T>, _ d: UnsafePointer<T>,
  _ y: UnsafeMutablePointer<T>, _ layout: ScanLayout, n: Int
) {
  let (length, channels) = (layout.length, layout.channels)
  // The state is walked 16 numbers at a time (`Vector`), the last piece padded with zeros:
  // a zero A gives a decay of 1 and a zero B writes nothing, so padding stays 0.
  let pieces = (n + 15) / 16
  var h = [Vector<T>](repeating: .zero, count: pieces)
  var decayRates = [Vector<T>](repeating: .zero, count: pieces)  // A's row
  for unit in units {
    let (sequence, channel) = (unit / channels, unit % channels)
    for piece in 0..<pieces {
      h[piece] = .zero
      decayRates[piece] = loadVector(a + channel * n + 16 * piece, count: n - 16 * piece)
    }
    for t in 0..<length {
      let step = sequence * length + t
      let (xt, dt) = (x[step * channels + channel], delta[step * channels + channel])
      var out = d[channel] * xt
      for piece in 0..<pieces {
        let lanes = n - 16 * piece
        let bt = loadVector(b + step * n + 16 * piece, count: lanes)
        let ct = loadVector(c + step * n + 16 * piece, count: lanes)
        h[piece] = T.exp(dt * decayRates[piece]) * h[piece] + (dt * xt) * bt
        out += (ct * h[piece]).sum()
      }
      y[step * channels + channel] = out
    }
  }
}

/// The backward pass of `selectiveScan`, given `g`, the gradient of its output. With the
/// state's gradient `dh_t = g_t · C_t + exp(Δ_{t+1} A) ⊙ dh_{t+1}` carried back from the
/// last step, and `Ā_t = exp(Δ_t A)`:
///
///     dC_t = Σ_channels g_t · h_t        dD = Σ_t g_t · x_t
///     dx_t = g_t · D + Σ_n dh_t · Δ_t · B_t
///     dΔ_t = Σ_n dh_t ⊙ (h_{t−1} ⊙ Ā_t ⊙ A + B_t · x_t)
///     dA   = Σ_t dh_t ⊙ h_{t−1} ⊙ Ā_t · Δ_t        dB_t = Σ_channels dh_t · Δ_t · x_t
///
/// The states are computed again, one channel at a time, rather than kept from the
/// forward pass. Every output is written (not added to). Sums over sequences are taken in
/// order after the per-sequence parts, so the bits do not depend on the thread count.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func selectiveScanBackward<T: KernelScalar>(
  x: UnsafePointer<T>, delta: UnsafePointer<T>, a: UnsafePointer<T>, b: UnsafePointer<T>,
  c: UnsafePointer<T>, d: UnsafePointer<T>, gradient g: UnsafePointer<T>, layout: ScanLayout,
  dx: UnsafeMutablePointer<T>, dDelta: UnsafeMutablePointer<T>, dA: UnsafeMutablePointer<T>,
  dB: UnsafeMutablePointer<T>, dC: UnsafeMutablePointer<T>, dD: UnsafeMutablePointer<T>
) {
  let (batch, length, channels, n) = (layout.batch, layout.length, layout.channels, layout.state)
  // Per sequence: its part of dA and dD, summed over the sequences at the end.
  var partA = [T](repeating: 0, count: batch * channels * n)
  var partD = [T](repeating: 0, count: batch * channels)
  dB.initialize(repeating: 0, count: batch * length * n)
  dC.initialize(repeating: 0, count: batch * length * n)
  partA.withUnsafeMutableBufferPointer { partA in
    partD.withUnsafeMutableBufferPointer { partD in
      forEachChunk(batch, grain: 1) { sequences in
        // A state of 16 runs a copy of the loop that knows it, as in the forward pass.
        if n == 16 {
          scanBackwardSequences(
            sequences, x, delta, a, b, c, d, g, layout, dx, dDelta, dB, dC, partA.baseAddress!,
            partD.baseAddress!, n: 16)
        } else {
          scanBackwardSequences(
            sequences, x, delta, a, b, c, d, g, layout, dx, dDelta, dB, dC, partA.baseAddress!,
            partD.baseAddress!, n: n)
        }
      }
      for entry in 0..<(channels * n) {
        var sum = T(0)
        for sequence in 0..<batch { sum += partA[sequence * channels * n + entry] }
        dA[entry] = sum
      }
      for channel in 0..<channels {
        var sum = T(0)
        for sequence in 0..<batch { sum += partD[sequence * channels + channel] }
        dD[channel] = sum
      }
    }
  }
}

/// The backward scan of the sequences `sequences` with a state of `n` (see
/// `selectiveScanBackward`): writes their dx, dΔ, dB and dC, and their parts of dA and dD.
@inline(__always)
private func scanBackwardSequences<T: KernelScalar>(
  _ sequences: Range<Int>, _ x: UnsafePointer<T>, _ delta: UnsafePointer<T>,
  _ a: UnsafePointer<T>, _ b: UnsafePointer<T>, _ c: UnsafePointer<T>, _ d: UnsafePointer<T>,
  _ g: UnsafePointer<T>, _ layout: ScanLayout, _ dx: UnsafeMutablePointer<T>,
  _ dDelta: UnsafeMutablePointer<T>, _ dB: UnsafeMutablePointer<T>,
  _ dC: UnsafeMutablePointer<T>, _ partA: UnsafeMutablePointer<T>,
  _ partD: UnsafeMutablePointer<T>, n: Int
) {
  let (length, channels) = (layout.length, layout.channels)
  let pieces = (n + 15) / 16
  var states = [Vector<T>](repeating: .zero, count: length * pieces)  // h_t, row t
  var decays = states  // Ā_t = exp(Δ_t A), row t, kept for the way back
  var carry = [Vector<T>](repeating: .zero, count: pieces)  // Ā_{t+1} ⊙ dh_{t+1}
  var decayRates = [Vector<T>](repeating: .zero, count: pieces)  // A's row
  /// Adds `v` to the `lanes` numbers at `p`.
  func add(_ v: Vector<T>, to p: UnsafeMutablePointer<T>, lanes: Int) {
    storeVector(loadVector(p, count: lanes) + v, p, count: lanes)
  }
  for sequence in sequences {
    for channel in 0..<channels {
      for piece in 0..<pieces {
        decayRates[piece] = loadVector(a + channel * n + 16 * piece, count: n - 16 * piece)
      }
      // The states h_0 … h_{length−1} of this channel, again.
      for t in 0..<length {
        let step = sequence * length + t
        let (xt, dt) = (x[step * channels + channel], delta[step * channels + channel])
        for piece in 0..<pieces {
          let previous = t > 0 ? states[(t - 1) * pieces + piece] : .zero
          let bt = loadVector(b + step * n + 16 * piece, count: n - 16 * piece)
          decays[t * pieces + piece] = T.exp(dt * decayRates[piece])
          states[t * pieces + piece] =
            decays[t * pieces + piece] * previous + (dt * xt) * bt
        }
      }
      for piece in 0..<pieces { carry[piece] = .zero }
      for t in stride(from: length - 1, through: 0, by: -1) {
        let step = sequence * length + t
        let at = step * channels + channel
        let (xt, dt, gt) = (x[at], delta[at], g[at])
        var (gradientX, gradientDelta) = (gt * d[channel], T(0))
        for piece in 0..<pieces {
          let (lanes, offset) = (n - 16 * piece, step * n + 16 * piece)
          let (bt, ct) = (
            loadVector(b + offset, count: lanes), loadVector(c + offset, count: lanes)
          )
          let decay = decays[t * pieces + piece]
          let dh = gt * ct + carry[piece]
          let previous = t > 0 ? states[(t - 1) * pieces + piece] : .zero
          add(gt * states[t * pieces + piece], to: dC + offset, lanes: lanes)
          add(dh * (dt * xt), to: dB + offset, lanes: lanes)
          gradientX += (dh * bt).sum() * dt
          gradientDelta += (dh * (previous * decay * decayRates[piece] + bt * xt)).sum()
          add(
            dh * previous * decay * dt,
            to: partA + (sequence * channels + channel) * n + 16 * piece,
            lanes: lanes)
          carry[piece] = dh * decay
        }
        partD[sequence * channels + channel] += gt * xt
        dx[at] = gradientX
        dDelta[at] = gradientDelta
      }
    }
  }
}
