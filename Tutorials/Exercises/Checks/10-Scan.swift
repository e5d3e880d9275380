import Autodiff
import NN
import Random

/// Lesson 10: the selective scan of one channel, step by step: `h_t = exp(Δ_t A) ⊙ h_{t−1}
/// + Δ_t B_t x_t`, `y_t = C_t · h_t + D x_t`. Checked against the fused `selectiveScan`.
public func checkScan(
  _ scan: (
    _ x: [Double], _ delta: [Double], _ a: [Double], _ b: [[Double]], _ c: [[Double]],
    _ d: Double
  ) -> [Double]
) -> ExerciseResult {
  var result = ExerciseResult("the selective scan of one channel (lesson 10)")
  var generator = SeededGenerator(seed: 10)
  for (length, state) in [(2, 1), (5, 3), (12, 4)] {
    let x = Tensor.normal([1, length, 1], dtype: .float64, generator: &generator)
    let delta = Tensor.uniform(
      [1, length, 1], low: 0.1, high: 1, dtype: .float64, generator: &generator)
    let a = Tensor.uniform([1, state], low: -2, high: -0.1, dtype: .float64, generator: &generator)
    let b = Tensor.normal([1, length, state], dtype: .float64, generator: &generator)
    let c = Tensor.normal([1, length, state], dtype: .float64, generator: &generator)
    let d = Tensor.normal([1], dtype: .float64, generator: &generator)
    let expected = selectiveScan(x: x, delta: delta, a: a, b: b, c: c, d: d).scalars
    func rows(_ t: Tensor) -> [[Double]] {
      (0..<length).map { Array(t.scalars[($0 * state)..<($0 * state + state)]) }
    }
    let yours = scan(x.scalars, delta.scalars, a.scalars, rows(b), rows(c), d.item)
    let error = largestDifference(yours, expected)
    result.expect(
      error < 1e-12, "\(length) steps, state \(state): largest difference \(scientific(error))")
  }
  return result
}
