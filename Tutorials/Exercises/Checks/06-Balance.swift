import Autodiff
import LoRAMixer
import Random

/// Lesson 06: the balance term `E · Σ_i p̄_i f_i` of one site, from each token's dense
/// probabilities and its top-k experts. Checked against `balanceTerm` on a real router's
/// routing.
public func checkBalance(
  _ balance: (_ probabilities: [[Double]], _ selected: [[Int]]) -> Double
) -> ExerciseResult {
  var result = ExerciseResult("the balance term (lesson 06)")
  var generator = SeededGenerator(seed: 6)
  for (experts, k) in [(4, 1), (4, 2), (6, 3)] {
    // Large weights route sharply, so that the load is uneven and balance is not 1.
    let router = Router(
      weight: .normal([experts, 5], standardDeviation: 2, dtype: .float64, generator: &generator))
    let x = Tensor.normal([9, 5], dtype: .float64, generator: &generator)
    let routing = router.route(x, settings: RoutingSettings(k: k), training: true)
    let p = routing.probabilities.scalars
    let rows = (0..<9).map { Array(p[($0 * experts)..<($0 * experts + experts)]) }
    let chosen = (0..<9).map { Array(routing.selected[($0 * k)..<($0 * k + k)]) }
    let expected = balanceTerm(routing, tokens: nil, experts: experts).item
    let yours = balance(rows, chosen)
    result.expect(
      abs(yours - expected) < 1e-12,
      "\(experts) experts, top-\(k): yours \(String(format: "%.6f", yours)), balanceTerm \(String(format: "%.6f", expected))"
    )
  }
  return result
}
