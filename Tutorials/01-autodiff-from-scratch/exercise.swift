import Autodiff
import Foundation

// Exercise (README, "Exercise"): make `sine` pass the gradient checker.
// Check it with: swift run lesson01-autodiff --exercise

/// sin(x) elementwise, recorded on the tape. The forward is done; its backward, the
/// vector-Jacobian product that turns the output's gradient g into the input's, is not:
/// it returns g unchanged, as if sin(x) were x.
func sine(_ x: Tensor) -> Tensor {
  let y = Tensor(shape: x.shape, scalars: x.scalars.map { Foundation.sin($0) })
  return y.recorded((x, { g in g }), operation: "sine")
}
