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
  p.withUnsafeMutableBufferPointer { p in
    m.withUnsafeMutableBufferPointer { m in
      v.withUnsafeMutableBufferPointer { v in
        gradient.withUnsafeBufferPointer { g in
          let tensor = AdamWTensor(
            parameter: p.baseAddress!, gradient: g.baseAddress!, firstMoment: m.baseAddress!,
            secondMoment: v.baseAddress!, count: count, weightDecay: 0.1)
          adamWStep(
            [tensor], step: 3, learningRate: 0.01, beta1: 0.9, beta2: 0.99, epsilon: 1e-8)
        }
      }
    }
  }
  #expect(m.map(\.bitPattern) == expectedM.map(\.bitPattern))
  #expect(v.map(\.bitPattern) == expectedV.map(\.bitPattern))
  #expect(p.map(\.bitPattern) == expectedP.map(\.bitPattern))
  #expect(p != start)
}

/// `adamWStep` over several tensors in one job gives every number the bits of one tensor at
/// a time: tensors with and without decay, an empty one, and sizes whose chunks begin and
/// end inside tensors (more numbers in all than several chunks of `elementwiseGrain`).
@Test func adamWStepOverManyTensorsGivesTheBitsOfOneAtATime() {
  let counts = [37, 0, elementwiseGrain + 5, 1, 3 * elementwiseGrain / 2, 768, 17]
  let decays = [0.1, 0, 0.1, 0, 0.1, 0.1, 0]
  let total = counts.reduce(0, +)
  let gradient = (0..<total).map { Float(cos(Double($0) * 0.37)) }
  let start = (0..<total).map { Float(sin(Double($0) * 0.11)) }
  /// p, m and v after one step of every tensor: one job, or a call per tensor.
  func stepped(oneJob: Bool) -> [[Float]] {
    var (p, m, v) = (start, start.map { $0 / 5 }, start.map { $0 * $0 / 3 })
    p.withUnsafeMutableBufferPointer { p in
      m.withUnsafeMutableBufferPointer { m in
        v.withUnsafeMutableBufferPointer { v in
          gradient.withUnsafeBufferPointer { g in
            var offset = 0
            let tensors = zip(counts, decays).map { count, decay in
              defer { offset += count }
              return AdamWTensor(
                parameter: p.baseAddress! + offset, gradient: g.baseAddress! + offset,
                firstMoment: m.baseAddress! + offset, secondMoment: v.baseAddress! + offset,
                count: count, weightDecay: decay)
            }
            for part in oneJob ? [tensors] : tensors.map { [$0] } {
              adamWStep(
                part, step: 2, learningRate: 0.01, beta1: 0.9, beta2: 0.99, epsilon: 1e-8)
            }
          }
        }
      }
    }
    return [p, m, v]
  }
  let (together, alone) = (stepped(oneJob: true), stepped(oneJob: false))
  for (a, b) in zip(together, alone) { #expect(a.map(\.bitPattern) == b.map(\.bitPattern)) }
  #expect(together[0] != start)
}
