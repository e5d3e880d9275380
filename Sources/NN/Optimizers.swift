import Autodiff
import Foundation
import Kernels

/// AdamW (Adam with decoupled weight decay, as PyTorch's `AdamW`), for Float32 parameters.
///
/// Weight decay applies to matrices only (rank 2 and up), not to norm scales, as in
/// nanoGPT.
public final class AdamW {
  /// The parameters it updates, in order.
  public let parameters: [Tensor]
  /// β₁, β₂: decay rates of the first and second moment estimates.
  public var beta1: Double, beta2: Double
  /// ε, added to the denominator.
  public var epsilon: Double
  /// The decoupled weight decay coefficient.
  public var weightDecay: Double
  /// Updates taken so far.
  public private(set) var step = 0
  /// The moment estimates, one pair per parameter.
  public private(set) var firstMoments: [[Float]], secondMoments: [[Float]]

  /// An optimizer for `parameters` (all Float32).
  public init(
    parameters: [Tensor], beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8,
    weightDecay: Double = 0.01
  ) {
    precondition(parameters.allSatisfy { $0.dtype == .float32 }, "AdamW updates Float32 parameters")
    self.parameters = parameters
    self.beta1 = beta1
    self.beta2 = beta2
    self.epsilon = epsilon
    self.weightDecay = weightDecay
    firstMoments = parameters.map { [Float](repeating: 0, count: $0.count) }
    secondMoments = firstMoments
  }

  /// Takes one step against `gradients` (one per parameter, same order and shapes).
  public func update(_ gradients: [Tensor], learningRate: Double) {
    precondition(
      gradients.count == parameters.count,
      "\(gradients.count) gradients for \(parameters.count) parameters")
    step += 1
    for index in parameters.indices {
      let parameter = parameters[index]
      let gradient = gradients[index]
      precondition(
        gradient.shape == parameter.shape,
        "gradient \(gradient.shape) for parameter \(parameter.shape)")
      let decay = parameter.rank >= 2 ? weightDecay : 0
      parameter.withMutableFloats { p in
        adamWStep(
          parameter: p.baseAddress!, gradient: gradient.floats, firstMoment: &firstMoments[index],
          secondMoment: &secondMoments[index], count: p.count, step: step,
          learningRate: learningRate,
          beta1: beta1, beta2: beta2, epsilon: epsilon, weightDecay: decay)
      }
    }
  }

  /// Restores a state saved from `step`, `firstMoments` and `secondMoments`.
  public func restore(step: Int, firstMoments: [[Float]], secondMoments: [[Float]]) {
    precondition(
      firstMoments.map(\.count) == parameters.map(\.count)
        && secondMoments.map(\.count) == parameters.map(\.count))
    self.step = step
    self.firstMoments = firstMoments
    self.secondMoments = secondMoments
  }
}

/// Stochastic gradient descent with momentum, for Float32 parameters.
public final class SGD {
  /// The parameters it updates, in order.
  public let parameters: [Tensor]
  /// The momentum coefficient μ (0 for plain SGD).
  public var momentum: Double
  private var buffers: [[Float]]

  /// An optimizer for `parameters` (all Float32).
  public init(parameters: [Tensor], momentum: Double = 0.9) {
    precondition(parameters.allSatisfy { $0.dtype == .float32 }, "SGD updates Float32 parameters")
    self.parameters = parameters
    self.momentum = momentum
    buffers = parameters.map { [Float](repeating: 0, count: $0.count) }
  }

  /// Takes one step against `gradients` (one per parameter, same order and shapes).
  public func update(_ gradients: [Tensor], learningRate: Double) {
    for index in parameters.indices {
      parameters[index].withMutableFloats { p in
        sgdStep(
          parameter: p.baseAddress!, gradient: gradients[index].floats,
          momentumBuffer: &buffers[index],
          count: p.count, learningRate: learningRate, momentum: momentum)
      }
    }
  }
}

/// The learning rate at `step` (from 0) of `totalSteps`: a linear warmup from 0 to `peak`
/// over `warmupSteps`, then a cosine decay to `minimum` at the last step.
///
/// The warmup takes at most a quarter of the run, so a run cut shorter than its recipe's
/// warmup (`--steps 40` of a recipe that warms up over 50) still reaches its peak and decays.
public func warmupCosineLearningRate(
  step: Int, totalSteps: Int, warmupSteps: Int, peak: Double, minimum: Double = 0
) -> Double {
  let warmupSteps = min(warmupSteps, max(1, totalSteps / 4))
  if step < warmupSteps { return peak * Double(step + 1) / Double(warmupSteps) }
  let decaySteps = max(1, totalSteps - warmupSteps - 1)
  let progress = min(1, Double(step - warmupSteps) / Double(decaySteps))
  return minimum + (peak - minimum) * (1 + cos(Double.pi * progress)) / 2
}

/// Scales `gradients` in place so that their global L2 norm is at most `maxNorm`.
/// Returns the norm before clipping (computed in a fixed order, in Double).
@discardableResult
public func clipGradients(_ gradients: [Tensor], maxNorm: Double) -> Double {
  var total = 0.0
  for gradient in gradients {
    total +=
      gradient.dtype == .float32
      ? sumOfSquares(gradient.floats, count: gradient.count)
      : gradient.scalars.reduce(0) { $0 + $1 * $1 }
  }
  let norm = total.squareRoot()
  if norm > maxNorm && norm.isFinite {
    let scale = maxNorm / norm
    for gradient in gradients {
      gradient.assign((gradient * scale).storage)
    }
  }
  return norm
}
