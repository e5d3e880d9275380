import Foundation
import Testing

@testable import Kernels

/// `adamWStep` works 16 numbers at a time; each number must come out as the formula gives it
/// one at a time, in Float, bit for bit: 37 numbers, two whole vectors and a short one.
@Test func adamWStepGivesEachNumberTheBitsOfTheScalarFormula() {
  let count = 37
  let start = (0..<count).map { Float(sin(Double($0)) * 2) }
  let gradient = (0..<count).map { Float(cos(Double($0) * 1.3)) }
  var (p, m, v) = (start, start.map { $0 / 7 }, start.map { $0 * $0 / 3 })
  let (expectedM, expectedV, expectedP): ([Float], [Float], [Float]) = {
    let (b1, b2, eps, lr, decay): (Float, Float, Float, Double, Double) = (
      0.9, 0.99, 1e-8, 0.01, 0.1
    )
    let step = 3
    let stepSize = Float(lr / (1 - pow(0.9, Double(step))))
    let root2 = Float((1 - pow(0.99, Double(step))).squareRoot())
    let shrink = Float(1 - lr * decay)
    var (p, m, v) = (p, m, v)
    for i in 0..<count {
      m[i] = b1 * m[i] + (1 - b1) * gradient[i]
      v[i] = b2 * v[i] + (1 - b2) * gradient[i] * gradient[i]
      p[i] = p[i] * shrink - stepSize * m[i] / (v[i].squareRoot() / root2 + eps)
    }
    return (m, v, p)
  }()
  adamWStep(
    parameter: &p, gradient: gradient, firstMoment: &m, secondMoment: &v, count: count, step: 3,
    learningRate: 0.01, beta1: 0.9, beta2: 0.99, epsilon: 1e-8, weightDecay: 0.1)
  #expect(m.map(\.bitPattern) == expectedM.map(\.bitPattern))
  #expect(v.map(\.bitPattern) == expectedV.map(\.bitPattern))
  #expect(p.map(\.bitPattern) == expectedP.map(\.bitPattern))
  #expect(p != start)
}
