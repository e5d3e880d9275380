import Autodiff
import Random

/// Lesson 05: the gradient of a soft router's logits, `dL/dz_e`, given the probabilities p
/// and each expert's contribution `c_e = ⟨g, expert e's output⟩`. Checked against the tape
/// through `softmax`.
public func checkRouterGradient(
  _ gradient: (_ probabilities: [Double], _ contributions: [Double]) -> [Double]
) -> ExerciseResult {
  var result = ExerciseResult("the soft router's gradient by hand (lesson 05)")
  var generator = SeededGenerator(seed: 5)
  for experts in [2, 4, 7] {
    let z = Tensor.normal([experts], dtype: .float64, generator: &generator)
    let c = Tensor.normal([experts], dtype: .float64, generator: &generator)
    z.requiresGradient = true
    let (_, gradients) = valueAndGradients(of: [z]) { (z.softmax() * c).sum() }
    let p = z.detached().softmax().scalars
    let error = largestDifference(gradient(p, c.scalars), gradients[0].scalars)
    result.expect(
      error < 1e-12,
      "\(experts) experts: largest difference from the tape's dL/dz \(scientific(error))")
  }
  return result
}
