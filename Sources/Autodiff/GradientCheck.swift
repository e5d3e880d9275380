import Random

/// Checks a function's gradients from the tape against central finite differences, in
/// Float64.
///
/// For an input x and a step h, `(f(x + h·v) − f(x − h·v)) / 2h` approximates the
/// directional derivative with an error of order h² (truncation) plus ε·|f|/h (rounding):
/// about 1e-10 at h = 1e-6 in Float64, far below the 1e-6 pass mark, while a wrong
/// derivative is off by a sizeable fraction of the gradient itself.
public enum GradientCheck {
  /// How the Jacobian is compared.
  public enum Method: Sendable {
    /// Every entry: one backward pass per output element and two evaluations per input
    /// element. For tiny inputs.
    case fullJacobian
    /// `count` random directions per input: the tape's `⟨uᵀJ, v⟩` against the finite
    /// difference of `⟨u, f⟩` along `v`, for random `u` and `v`. For larger inputs.
    case randomProjections(count: Int)
  }

  /// The worst disagreement between the tape's and the numerical gradients.
  public struct Result: Sendable {
    /// The largest absolute difference.
    public var maxAbsoluteError: Double
    /// The largest difference relative to the size of the gradient it belongs to: for a
    /// full Jacobian, the largest entry of that input's block; for a projection, the
    /// largest it could be, |uᵀJ|·|v|.
    public var maxRelativeError: Double
    /// The relative error allowed.
    public var tolerance: Double
    /// Whether the relative error is below the tolerance.
    public var passed: Bool { maxRelativeError < tolerance }
  }

  /// The pass mark for relative error.
  public static let defaultTolerance = 1e-6

  /// Compares the gradients of `function` at `inputs` (Float64 tensors) with finite
  /// differences of step `step`.
  public static func check(
    _ function: ([Tensor]) -> Tensor, at inputs: [Tensor], method: Method = .fullJacobian,
    step: Double = 1e-6, tolerance: Double = defaultTolerance, seed: UInt64 = 0
  ) -> Result {
    let leaves = inputs.map { Tensor(shape: $0.shape, storage: $0.storage, requiresGradient: true) }
    return check(
      parameters: leaves, of: { function(leaves) }, method: method, step: step,
      tolerance: tolerance,
      seed: seed)
  }

  /// Compares the gradients of `output()` with respect to `parameters` (Float64 tensors
  /// that require a gradient, such as a model's weights) with finite differences. Each
  /// parameter is shifted in place while `output` is evaluated, then restored.
  public static func check(
    parameters: [Tensor], of output: () -> Tensor, method: Method = .fullJacobian,
    step: Double = 1e-6, tolerance: Double = defaultTolerance, seed: UInt64 = 0
  ) -> Result {
    precondition(parameters.allSatisfy { $0.dtype == .float64 }, "gradient checks run in Float64")
    precondition(
      parameters.allSatisfy(\.requiresGradient), "checked parameters must require a gradient")
    let tape = Tape()
    let value = tape.record(output)

    /// `output` with parameter `index` moved by `scale · direction`, on no tape.
    func shifted(_ index: Int, _ direction: [Double], _ scale: Double) -> [Double] {
      let parameter = parameters[index]
      let original = parameter.storage
      parameter.assign(.float64(zip(parameter.doubles, direction).map { $0 + scale * $1 }))
      defer { parameter.assign(original) }
      return Tape.$active.withValue(nil) { output().scalars }
    }
    let errors =
      switch method {
      case .fullJacobian:
        fullJacobianErrors(tape, value, parameters, step: step, shifted: shifted)
      case .randomProjections(let count):
        projectionErrors(
          tape, value, parameters, count: count, step: step, seed: seed, shifted: shifted)
      }
    var result = Result(maxAbsoluteError: 0, maxRelativeError: 0, tolerance: tolerance)
    for (absolute, scale) in errors {
      result.maxAbsoluteError = Swift.max(result.maxAbsoluteError, absolute)
      result.maxRelativeError = Swift.max(
        result.maxRelativeError, scale > 0 ? absolute / scale : 0)
    }
    return result
  }

  /// Per parameter: the largest difference between the tape's Jacobian and central
  /// differences over every element and output, with the largest magnitude of either.
  private static func fullJacobianErrors(
    _ tape: Tape, _ value: Tensor, _ parameters: [Tensor], step: Double,
    shifted: (Int, [Double], Double) -> [Double]
  ) -> [(absolute: Double, scale: Double)] {
    // The tape's Jacobian, one row (the gradient of one output element) at a time.
    let outputs = value.count
    var tapeRows: [[[Double]]] = []  // [output element][parameter] -> gradient values
    for j in 0..<outputs {
      var seed = [Double](repeating: 0, count: outputs)
      seed[j] = 1
      let gradients = tape.gradients(of: value, seed: Tensor(shape: value.shape, scalars: seed))
      tapeRows.append(
        parameters.map { gradients[$0]?.scalars ?? [Double](repeating: 0, count: $0.count) })
    }
    return parameters.enumerated().map { index, parameter in
      var worst = 0.0
      var largest = 0.0
      for e in 0..<parameter.count {
        var direction = [Double](repeating: 0, count: parameter.count)
        direction[e] = 1
        let plus = shifted(index, direction, step)
        let minus = shifted(index, direction, -step)
        for j in 0..<outputs {
          let numerical = (plus[j] - minus[j]) / (2 * step)
          let analytical = tapeRows[j][index][e]
          worst = Swift.max(worst, abs(numerical - analytical))
          largest = Swift.max(largest, abs(numerical), abs(analytical))
        }
      }
      return (worst, largest)
    }
  }

  /// Per parameter and projection: uᵀ J v from the tape against central differences, for
  /// `count` random pairs (u over the output, v over the parameter) drawn from `seed`.
  private static func projectionErrors(
    _ tape: Tape, _ value: Tensor, _ parameters: [Tensor], count: Int, step: Double,
    seed: UInt64, shifted: (Int, [Double], Double) -> [Double]
  ) -> [(absolute: Double, scale: Double)] {
    var generator = SeededGenerator(seed: seed)
    var errors: [(absolute: Double, scale: Double)] = []
    for (index, parameter) in parameters.enumerated() {
      for _ in 0..<count {
        let u = Tensor.normal(value.shape, dtype: .float64, generator: &generator)
        let v = (0..<parameter.count).map { _ in generator.nextNormal() }
        let gradient =
          tape.gradients(of: value, seed: u)[parameter]?.scalars
          ?? [Double](repeating: 0, count: parameter.count)
        let analytical = zip(gradient, v).reduce(0) { $0 + $1.0 * $1.1 }
        let weights = u.scalars
        let plus = zip(weights, shifted(index, v, step)).reduce(0) { $0 + $1.0 * $1.1 }
        let minus = zip(weights, shifted(index, v, -step)).reduce(0) { $0 + $1.0 * $1.1 }
        let numerical = (plus - minus) / (2 * step)
        // Scaled like the full Jacobian's block maximum: by the largest this projection
        // could be, |g|·|v|, so a direction nearly orthogonal to the gradient does not
        // magnify rounding noise.
        let bound =
          gradient.reduce(0) { $0 + $1 * $1 }.squareRoot()
          * v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        errors.append(
          (abs(numerical - analytical), Swift.max(abs(numerical), abs(analytical), bound)))
      }
    }
    return errors
  }
}
