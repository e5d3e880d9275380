import Autodiff
import LoRAMixer
import Random

/// Lesson 07: the weights a token's experts are mixed by at inference: the softmax of the
/// router's logits, kept on the top k (ties to the lower index) and renormalised. Checked
/// against `Router.route`.
public func checkTopKWeights(_ weights: (_ logits: [Double], _ k: Int) -> [Double])
  -> ExerciseResult
{
  var result = ExerciseResult("a token's top-k mixing weights (lesson 07)")
  var generator = SeededGenerator(seed: 7)
  for (experts, k) in [(2, 1), (6, 2), (6, 3), (5, 5)] {
    let router = Router(
      weight: .normal([experts, 4], dtype: .float64, generator: &generator), present: nil)
    let x = Tensor.normal([1, 4], dtype: .float64, generator: &generator)
    let routing = router.route(x, settings: RoutingSettings(k: k), training: false)
    let logits = routing.scaledLogits.scalars
    let error = largestDifference(weights(logits, k), routing.weights.scalars)
    result.expect(
      error < 1e-12, "\(experts) experts, top-\(k): largest difference \(scientific(error))")
  }
  return result
}
