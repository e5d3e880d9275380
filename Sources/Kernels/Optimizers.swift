import Foundation

/// One tensor of an AdamW step: its `count` numbers, their gradient and moment estimates,
/// and its weight decay.
public struct AdamWTensor {
  /// The parameter's numbers, updated in place.
  public var parameter: UnsafeMutablePointer<Float>
  /// Their gradient.
  public var gradient: UnsafePointer<Float>
  /// m and v, updated in place.
  public var firstMoment: UnsafeMutablePointer<Float>, secondMoment: UnsafeMutablePointer<Float>
  /// Numbers in each.
  public var count: Int
  /// The decoupled weight decay coefficient (0 for norm scales).
  public var weightDecay: Double

  /// A tensor of `count` numbers at `parameter`, with its gradient and moments.
  public init(
    parameter: UnsafeMutablePointer<Float>, gradient: UnsafePointer<Float>,
    firstMoment: UnsafeMutablePointer<Float>, secondMoment: UnsafeMutablePointer<Float>,
    count: Int, weightDecay: Double
  ) {
    (self.parameter, self.gradient, self.firstMoment, self.secondMoment) = (
      parameter, gradient, firstMoment, secondMoment
    )
    (self.count, self.weightDecay) = (count, weightDecay)
  }
}

/// One AdamW step on several tensors, in place (PyTorch's `AdamW` semantics), for each
/// number:
///
///     p ← p · (1 − lr · weightDecay)                       decoupled weight decay
///     m ← β₁ m + (1 − β₁) g,   v ← β₂ v + (1 − β₂) g²      moment estimates
///     p ← p − lr / (1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)    bias-corrected step
///
/// `step` counts from 1. The tensors are one job: their numbers, one tensor after the
/// other, are cut into equal chunks wherever the tensors begin and end, so that a model's
/// many small tensors share the threads. Tensor by tensor, each below `elementwiseGrain`
/// ran on the calling thread alone: the bench mixture's 208 tensors (routers of 768
/// numbers, experts' factors of 1,024) took 0.43 to 0.44 ms of its step so, 0.34 to 0.39 in
/// one job; the bench base's 1.16 to 1.31 ms, 0.80 to 0.87 (AVX2 build on the AMD EPYC Zen
/// 5, 2 threads, `--profile`, three runs each in turns). Every number gets the bits it gets
/// alone.
public func adamWStep(
  _ tensors: [AdamWTensor], step: Int, learningRate: Double, beta1: Double, beta2: Double,
  epsilon: Double
) {
  let correction1 = 1 - pow(beta1, Double(step))
  let correction2 = 1 - pow(beta2, Double(step))
  let stepSize = Float(learningRate / correction1)
  let b1 = Float(beta1)
  let b2 = Float(beta2)
  let root2 = Float(correction2.squareRoot())
  let eps = Float(epsilon)
  // Where each tensor starts among all the numbers.
  var starts = [0]
  for tensor in tensors { starts.append(starts.last! + tensor.count) }
  forEachEvenChunk(starts.last!, grain: elementwiseGrain) { range in
    // The last tensor starting at or before the chunk's first number, then each in turn.
    var index = starts.lastIndex { $0 <= range.lowerBound }!
    while index < tensors.count && starts[index] < range.upperBound {
      let tensor = tensors[index]
      var update = AdamWStep(
        p: tensor.parameter, g: tensor.gradient, m: tensor.firstMoment, v: tensor.secondMoment,
        stepSize: stepSize, decay: Float(1 - learningRate * tensor.weightDecay), b1: b1, b2: b2,
        root2: root2, eps: eps)
      let first = max(range.lowerBound, starts[index]) - starts[index]
      let end = min(range.upperBound, starts[index + 1]) - starts[index]
      forEachVector(in: first..<end, &update)
      index += 1
    }
  }
}

/// 16 elements of `adamWStep`, each computed as one element alone would be. Element by
/// element the compiler left the loop scalar, its square roots and divisions one at a time:
/// the bench mixture's optimizer step (208,896 numbers) took 0.92 to 0.94 ms so, 0.52 to
/// 0.54 now (AMD EPYC Zen 3, `bench train-mixer --profile`, in turns).
private struct AdamWStep: VectorStep {
  let p: UnsafeMutablePointer<Float>
  let g: UnsafePointer<Float>
  let m: UnsafeMutablePointer<Float>
  let v: UnsafeMutablePointer<Float>
  let stepSize: Float
  let decay: Float
  let b1: Float
  let b2: Float
  let root2: Float
  let eps: Float

  @inline(__always) func callAsFunction(_ i: Int, lanes: Int) {
    let gradient = loadVector(g + i, count: lanes)
    let first = b1 * loadVector(m + i, count: lanes) + (1 - b1) * gradient
    let second = b2 * loadVector(v + i, count: lanes) + (1 - b2) * gradient * gradient
    let parameter =
      loadVector(p + i, count: lanes) * decay - stepSize * first
      / (second.squareRoot() / root2 + eps)
    storeVector(first, m + i, count: lanes)
    storeVector(second, v + i, count: lanes)
    storeVector(parameter, p + i, count: lanes)
  }
}

/// One SGD step with momentum, in place: `b ← μ b + g`, `p ← p − lr · b`.
public func sgdStep(
  parameter p: UnsafeMutablePointer<Float>, gradient g: UnsafePointer<Float>,
  momentumBuffer b: UnsafeMutablePointer<Float>, count: Int, learningRate: Double, momentum: Double
) {
  let lr = Float(learningRate)
  let mu = Float(momentum)
  forEachChunk(count, grain: elementwiseGrain) { range in
    for i in range {
      b[i] = mu * b[i] + g[i]
      p[i] -= lr * b[i]
    }
  }
}

/// `Σ x²` over `count` elements, in a fixed order (chunks of `elementwiseGrain` summed in
/// chunk order), for gradient norms.
public func sumOfSquares(_ x: UnsafePointer<Float>, count: Int) -> Double {
  let chunks = (count + elementwiseGrain - 1) / elementwiseGrain
  return Scratch.with(Double.self, count: max(1, chunks)) { partials in
    forEachChunk(count, grain: elementwiseGrain) { range in
      partials[range.lowerBound / elementwiseGrain] = Double(
        contiguousDot(x + range.lowerBound, x + range.lowerBound, range.count))
    }
    var total = 0.0
    for chunk in 0..<chunks { total += partials[chunk] }
    return total
  }
}
