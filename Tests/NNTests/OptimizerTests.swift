import Autodiff
import Foundation
import Testing

@testable import NN

@Test func adamWFollowsItsDefinition() {
  let parameter = Tensor(shape: [2, 2], scalars: [Float(0.5), -1, 2, 0.25])
  let optimizer = AdamW(
    parameters: [parameter], beta1: 0.9, beta2: 0.99, epsilon: 1e-8, weightDecay: 0.1)
  var p = [0.5, -1, 2, 0.25]
  var m = [Double](repeating: 0, count: 4)
  var v = m
  let gradients = [[0.1, -0.2, 0.3, 0.0], [-0.5, 0.1, 0.2, 0.4], [0.05, 0.05, -0.1, 1.0]]
  for (index, g) in gradients.enumerated() {
    optimizer.update([Tensor(shape: [2, 2], scalars: g.map { Float($0) })], learningRate: 0.01)
    let t = Double(index + 1)
    for i in 0..<4 {
      p[i] *= 1 - 0.01 * 0.1
      m[i] = 0.9 * m[i] + 0.1 * g[i]
      v[i] = 0.99 * v[i] + 0.01 * g[i] * g[i]
      p[i] -= 0.01 / (1 - pow(0.9, t)) * m[i] / (sqrt(v[i]) / sqrt(1 - pow(0.99, t)) + 1e-8)
    }
  }
  for (a, b) in zip(parameter.scalars, p) { #expect(abs(a - b) < 1e-6) }
  #expect(optimizer.step == 3)
}

@Test func adamWDoesNotDecayNormScales() {
  let scale = Tensor(shape: [3], scalars: [Float(1), 1, 1])
  let optimizer = AdamW(parameters: [scale], weightDecay: 0.5)
  optimizer.update([Tensor.zeros([3])], learningRate: 0.1)
  #expect(scale.scalars == [1, 1, 1])
}

@Test func sgdWithMomentumFollowsItsDefinition() {
  let parameter = Tensor(shape: [2], scalars: [Float(1), 2])
  let optimizer = SGD(parameters: [parameter], momentum: 0.5)
  optimizer.update([Tensor(shape: [2], scalars: [Float(1), -1])], learningRate: 0.1)
  optimizer.update([Tensor(shape: [2], scalars: [Float(1), -1])], learningRate: 0.1)
  // Buffers: 1, then 1.5; steps 0.1 and 0.15.
  #expect(zip(parameter.scalars, [0.75, 2.25]).allSatisfy { abs($0 - $1) < 1e-6 })
}

@Test func warmupThenCosineDecay() {
  let rate = { (step: Int) in
    warmupCosineLearningRate(step: step, totalSteps: 110, warmupSteps: 10, peak: 1, minimum: 0.1)
  }
  #expect(abs(rate(0) - 0.1) < 1e-12)
  #expect(abs(rate(9) - 1) < 1e-12)
  #expect(abs(rate(10) - 1) < 1e-12)
  #expect(abs(rate(109) - 0.1) < 1e-12)
  #expect(rate(60) < rate(40))
}

@Test func aRunShorterThanItsWarmupStillPeaksAndDecays() {
  let rate = { (step: Int) in
    warmupCosineLearningRate(step: step, totalSteps: 40, warmupSteps: 50, peak: 1, minimum: 0.1)
  }
  #expect(abs(rate(9) - 1) < 1e-12)
  #expect(abs(rate(39) - 0.1) < 1e-12)
  #expect(rate(0) < rate(5) && rate(30) < rate(15))
}

@Test func clippingScalesToTheMaximumNorm() {
  let a = Tensor(shape: [2], scalars: [Float(3), 0])
  let b = Tensor(shape: [1], scalars: [Float(4)])
  let norm = clipGradients([a, b], maxNorm: 1)
  #expect(abs(norm - 5) < 1e-6)
  #expect(zip(a.scalars + b.scalars, [0.6, 0, 0.8]).allSatisfy { abs($0 - $1) < 1e-6 })
  let small = Tensor(shape: [1], scalars: [Float(0.5)])
  clipGradients([small], maxNorm: 1)
  #expect(small.scalars == [0.5])
}
