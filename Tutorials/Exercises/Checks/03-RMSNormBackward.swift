import Autodiff
import NN
import Random

/// Lesson 03: RMSNorm's input gradient written from its derivation, for one row. Checked
/// against the gradient the tape computes through `rmsNorm`.
public func checkRMSNormBackward(
  _ backward: (_ x: [Double], _ weight: [Double], _ gradient: [Double], _ epsilon: Double) ->
    [Double]
) -> ExerciseResult {
  var result = ExerciseResult("RMSNorm's backward by hand (lesson 03)")
  var generator = SeededGenerator(seed: 3)
  for size in [1, 4, 9] {
    let x = Tensor.normal([1, size], dtype: .float64, generator: &generator)
    let weight = Tensor.normal([size], dtype: .float64, generator: &generator)
    let g = Tensor.normal([1, size], dtype: .float64, generator: &generator)
    x.requiresGradient = true
    let (_, gradients) = valueAndGradients(of: [x]) {
      (rmsNorm(x, weight: weight, epsilon: 1e-5) * g).sum()
    }
    let error = largestDifference(
      backward(x.scalars, weight.scalars, g.scalars, 1e-5), gradients[0].scalars)
    result.expect(
      error < 1e-10, "a row of \(size): largest difference from the tape's dx \(scientific(error))")
  }
  return result
}
