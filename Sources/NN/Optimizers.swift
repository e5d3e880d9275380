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
  /// The moment estimates m and v of every parameter, one after the other, from `starts`.
  private var firstMomentNumbers: [Float], secondMomentNumbers: [Float]
  /// Where each parameter's moments start, and (last) their total.
  private let starts: [Int]

  /// The first moment estimates, one per parameter.
  public var firstMoments: [[Float]] { split(firstMomentNumbers) }
  /// The second moment estimates, one per parameter.
  public var secondMoments: [[Float]] { split(secondMomentNumbers) }

  /// An optimizer for `parameters` (all Float32, each tensor once).
  public init(
    parameters: [Tensor], beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8,
    weightDecay: Double = 0.01
  ) {
    precondition(parameters.allSatisfy { $0.dtype == .float32 }, "AdamW updates Float32 parameters")
    precondition(
      Set(parameters.map(ObjectIdentifier.init)).count == parameters.count,
      "AdamW updates each tensor once")
    self.parameters = parameters
    self.beta1 = beta1
    self.beta2 = beta2
    self.epsilon = epsilon
    self.weightDecay = weightDecay
    var starts = [0]
    for parameter in parameters { starts.append(starts.last! + parameter.count) }
    self.starts = starts
    firstMomentNumbers = [Float](repeating: 0, count: starts.last!)
    secondMomentNumbers = firstMomentNumbers
  }

  /// Takes one step against `gradients` (one per parameter, same order and shapes): all the
  /// parameters in one job (`adamWStep` over every tensor), each one's numbers and gradient
  /// opened inside the previous one's, so that all are open at once.
  public func update(_ gradients: [Tensor], learningRate: Double) {
    precondition(
      gradients.count == parameters.count,
      "\(gradients.count) gradients for \(parameters.count) parameters")
    for (parameter, gradient) in zip(parameters, gradients) {
      precondition(
        gradient.shape == parameter.shape,
        "gradient \(gradient.shape) for parameter \(parameter.shape)")
    }
    step += 1
    let gradientNumbers = gradients.map(\.floats)
    var tensors: [AdamWTensor] = []
    tensors.reserveCapacity(parameters.count)
    firstMomentNumbers.withUnsafeMutableBufferPointer { m in
      secondMomentNumbers.withUnsafeMutableBufferPointer { v in
        /// Opens parameter `index`'s numbers and gradient, and those after it, then steps.
        func open(_ index: Int) {
          guard index < parameters.count else {
            adamWStep(
              tensors, step: step, learningRate: learningRate, beta1: beta1, beta2: beta2,
              epsilon: epsilon)
            return
          }
          let parameter = parameters[index]
          parameter.withMutableFloats { p in
            gradientNumbers[index].withUnsafeBufferPointer { g in
              if let numbers = p.baseAddress, let gradient = g.baseAddress {
                tensors.append(
                  AdamWTensor(
                    parameter: numbers, gradient: gradient,
                    firstMoment: m.baseAddress! + starts[index],
                    secondMoment: v.baseAddress! + starts[index], count: p.count,
                    weightDecay: parameter.rank >= 2 ? weightDecay : 0))
              }
              open(index + 1)
            }
          }
        }
        open(0)
      }
    }
  }

  /// Restores a state saved from `step`, `firstMoments` and `secondMoments`.
  public func restore(step: Int, firstMoments: [[Float]], secondMoments: [[Float]]) {
    precondition(
      firstMoments.map(\.count) == parameters.map(\.count)
        && secondMoments.map(\.count) == parameters.map(\.count))
    self.step = step
    firstMomentNumbers = firstMoments.flatMap { $0 }
    secondMomentNumbers = secondMoments.flatMap { $0 }
  }

  /// Each parameter's part of `numbers`.
  private func split(_ numbers: [Float]) -> [[Float]] {
    parameters.indices.map { Array(numbers[starts[$0]..<starts[$0 + 1]]) }
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
