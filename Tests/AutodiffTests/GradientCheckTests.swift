import Testing

@testable import Autodiff

@Test(arguments: GradientCheckCase.operations)
func operationPassesGradientCheck(_ check: GradientCheckCase) {
  let result = check.run()
  #expect(result.passed, "\(check.name) \(check.shapes): relative error \(result.maxRelativeError)")
  #expect(result.maxRelativeError.isFinite)
}

/// `x²` with a planted bug: its vector-Jacobian product says `g · x` instead of `g · 2x`.
func squareWithWrongDerivative(_ x: Tensor) -> Tensor {
  let y = x.detached() * x.detached()
  return y.recorded((x, { g in g * x }))
}

/// The same operation written correctly, as a control.
func squareWithRightDerivative(_ x: Tensor) -> Tensor {
  let y = x.detached() * x.detached()
  return y.recorded((x, { g in g * x * 2 }))
}

@Test(arguments: [GradientCheck.Method.fullJacobian, .randomProjections(count: 3)])
func checkerCatchesAPlantedWrongDerivative(method: GradientCheck.Method) {
  let x = TestValues.positive.tensor([3, 2], seed: 5)
  let wrong = GradientCheck.check(
    { squareWithWrongDerivative($0[0]).sum() }, at: [x], method: method)
  #expect(!wrong.passed)
  #expect(wrong.maxRelativeError > 0.1)
  let right = GradientCheck.check(
    { squareWithRightDerivative($0[0]).sum() }, at: [x], method: method)
  #expect(right.passed, "control: \(right.maxRelativeError)")
}

@Test func checkerCatchesAWrongDerivativeOfOneInputAmongSeveral() {
  let a = TestValues.signed.tensor([2, 2], seed: 1)
  let b = TestValues.positive.tensor([2, 2], seed: 2)
  let result = GradientCheck.check({ $0[0] + squareWithWrongDerivative($0[1]) }, at: [a, b])
  #expect(!result.passed)
}

@Test func everyCatalogNameIsUnique() {
  let names = GradientCheckCase.operations.map(\.name)
  #expect(Set(names).count == names.count)
}
