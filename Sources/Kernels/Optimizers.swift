import Foundation

/// One AdamW step on a parameter, in place (PyTorch's `AdamW` semantics):
///
///     p ← p · (1 − lr · weightDecay)                       decoupled weight decay
///     m ← β₁ m + (1 − β₁) g,   v ← β₂ v + (1 − β₂) g²      moment estimates
///     p ← p − lr / (1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)    bias-corrected step
///
/// `step` counts from 1.
public func adamWStep(
  parameter p: UnsafeMutablePointer<Float>, gradient g: UnsafePointer<Float>,
  firstMoment m: UnsafeMutablePointer<Float>, secondMoment v: UnsafeMutablePointer<Float>,
  count: Int, step: Int, learningRate: Double, beta1: Double, beta2: Double, epsilon: Double,
  weightDecay: Double
) {
  let correction1 = 1 - pow(beta1, Double(step))
  let correction2 = 1 - pow(beta2, Double(step))
  let stepSize = Float(learningRate / correction1)
  let decay = Float(1 - learningRate * weightDecay)
  let b1 = Float(beta1)
  let b2 = Float(beta2)
  let root2 = Float(correction2.squareRoot())
  let eps = Float(epsilon)
  forEachChunk(count, grain: elementwiseGrain) { range in
    var step = AdamWStep(
      p: p, g: g, m: m, v: v, stepSize: stepSize, decay: decay, b1: b1, b2: b2, root2: root2,
      eps: eps)
    forEachVector(in: range, &step)
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
