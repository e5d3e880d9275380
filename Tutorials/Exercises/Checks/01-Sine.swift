import Autodiff
import Foundation

/// Lesson 01: `sine(x)` recorded on the tape, its backward the vector-Jacobian product of
/// sin. Checked against Foundation's `sin` and against finite differences.
public func checkSine(_ sine: (Tensor) -> Tensor) -> ExerciseResult {
  var result = ExerciseResult("sin as a differentiable operation (lesson 01)")
  let x = Tensor(shape: [5], scalars: [-2.0, -0.5, 0.0, 0.7, 3.0])
  let values = sine(x).scalars
  let error = largestDifference(values, x.scalars.map { Foundation.sin($0) })
  result.expect(
    error < 1e-12, "values against Foundation's sin: largest difference \(scientific(error))")
  let check = GradientCheck.check({ sine($0[0]) }, at: [x])
  result.expect(
    check.passed,
    "gradient against finite differences: relative error \(scientific(check.maxRelativeError)) (needs < \(scientific(check.tolerance)))"
  )
  return result
}
