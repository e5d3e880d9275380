// Exercise (README, "Exercise"): the selective scan of one channel, step by step.
// Check it with: swift run lesson10-selective-scan-and-mamba --exercise

/// y_t for one channel: h_t = exp(Δ_t A) ⊙ h_{t−1} + Δ_t B_t x_t, y_t = C_t · h_t + D x_t,
/// h starting at zero; `a` is the channel's row of A, `b[t]` and `c[t]` the step's B and C.
/// As written it forgets the decay exp(Δ_t A), so the state never forgets.
func scanOneChannel(
  _ x: [Double], _ delta: [Double], _ a: [Double], _ b: [[Double]], _ c: [[Double]],
  _ d: Double
) -> [Double] {
  var h = [Double](repeating: 0, count: a.count)
  var y: [Double] = []
  for t in x.indices {
    for n in h.indices { h[n] = h[n] + delta[t] * b[t][n] * x[t] }
    y.append(zip(c[t], h).map { $0 * $1 }.reduce(0, +) + d * x[t])
  }
  return y
}
