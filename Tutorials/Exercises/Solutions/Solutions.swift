// The solutions to the lessons' exercises, one function each, in lesson order. Try the
// exercise first: `swift run lessonNN-… --exercise` says whether yours holds.
// `SolutionTests.swift` holds each of these to the same check.

import Autodiff
import Foundation

/// Lesson 01: d sin(x)/dx = cos(x), so the input's gradient is g ⊙ cos(x).
func sine(_ x: Tensor) -> Tensor {
  let y = Tensor(shape: x.shape, scalars: x.scalars.map { Foundation.sin($0) })
  let derivative = Tensor(shape: x.shape, scalars: x.scalars.map { Foundation.cos($0) })
  return y.recorded((x, { g in g * derivative }), operation: "sine")
}

/// Lesson 02: one fused multiply-add per term (`addingProduct` rounds once), over p in
/// increasing order from zero: the chain every microkernel computes for each element.
func plainMultiply(_ a: [Float], _ b: [Float], _ m: Int, _ k: Int, _ n: Int) -> [Float] {
  var c = [Float](repeating: 0, count: m * n)
  for i in 0..<m {
    for j in 0..<n {
      var sum: Float = 0
      for p in 0..<k { sum = sum.addingProduct(a[i * k + p], b[p * n + j]) }
      c[i * n + j] = sum
    }
  }
  return c
}

/// Lesson 03: y_j = x_j r w_j with r = (mean(x²) + ε)^(-1/2), dr/dx_i = −r³ x_i / n, so
/// dx_i = r g_i w_i − x_i r³ Σ_j g_j w_j x_j / n.
func rmsNormInputGradient(
  _ x: [Double], _ weight: [Double], _ g: [Double], _ epsilon: Double
) -> [Double] {
  let n = Double(x.count)
  let r = 1 / ((x.map { $0 * $0 }.reduce(0, +) / n) + epsilon).squareRoot()
  let projection = x.indices.map { g[$0] * weight[$0] * x[$0] }.reduce(0, +) / n
  return x.indices.map { i in r * g[i] * weight[i] - x[i] * r * r * r * projection }
}

/// Lesson 04: W x + s B (A x) = (W + s B A) x.
func mergedWeight(_ weight: Tensor, _ a: Tensor, _ b: Tensor, _ scale: Double) -> Tensor {
  weight + matmul(b, a) * scale
}

/// Lesson 05: dp_e/dz_j = p_e (δ_ej − p_j), so dL/dz_j = p_j (c_j − Σ_e p_e c_e).
func softRouterGradient(_ p: [Double], _ c: [Double]) -> [Double] {
  let mean = zip(p, c).map { $0 * $1 }.reduce(0, +)
  return p.indices.map { p[$0] * (c[$0] - mean) }
}

/// Lesson 06: p̄ the mean row; f_i the share of all k·T slots expert i took.
func balance(_ probabilities: [[Double]], _ selected: [[Int]]) -> Double {
  let experts = probabilities[0].count
  let tokens = Double(probabilities.count)
  var meanProbability = [Double](repeating: 0, count: experts)
  var share = [Double](repeating: 0, count: experts)
  for (row, chosen) in zip(probabilities, selected) {
    for i in 0..<experts { meanProbability[i] += row[i] / tokens }
    for i in chosen { share[i] += 1 / (tokens * Double(chosen.count)) }
  }
  return Double(experts) * zip(meanProbability, share).map { $0 * $1 }.reduce(0, +)
}

/// Lesson 07: the softmax, its k largest entries kept (a stable sort by value keeps the
/// lower index first among ties), divided by their sum.
func topKWeights(_ logits: [Double], _ k: Int) -> [Double] {
  let largest = logits.max()!
  let e = logits.map { Foundation.exp($0 - largest) }
  let p = e.map { $0 / e.reduce(0, +) }
  let kept = Set(p.indices.sorted { p[$0] > p[$1] || (p[$0] == p[$1] && $0 < $1) }.prefix(k))
  let total = kept.map { p[$0] }.reduce(0, +)
  return p.indices.map { kept.contains($0) ? p[$0] / total : 0 }
}

/// Lesson 08: the sample standard deviation, divided by n − 1 (three seeds estimate the
/// spread of all seeds; dividing by n would understate it).
func meanAndDeviation(_ values: [Double]) -> (Double, Double) {
  let n = Double(values.count)
  let mean = values.reduce(0, +) / n
  let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / (n - 1)
  return (mean, variance.squareRoot())
}

/// Lesson 09: 8 bytes of little-endian header length, then that many bytes of JSON: an
/// object of tensors (`dtype`, `shape`, `data_offsets` [start, end) into the data that
/// follows) and an optional `__metadata__`.
func tensorRanges(_ file: Data) -> [(name: String, start: Int, end: Int)] {
  let bytes = [UInt8](file)
  let length = (0..<8).reduce(0) { $0 | Int(bytes[$1]) << (8 * $1) }
  let header = Data(bytes[8..<(8 + length)])
  guard let object = try? JSONSerialization.jsonObject(with: header) as? [String: Any] else {
    return []
  }
  return object.compactMap { name, value in
    guard name != "__metadata__", let entry = value as? [String: Any],
      let offsets = entry["data_offsets"] as? [Int], offsets.count == 2
    else { return nil }
    return (name, offsets[0], offsets[1])
  }
}

/// Lesson 10: the decay exp(Δ_t a_n) multiplies the state before the new input is added.
func scanOneChannel(
  _ x: [Double], _ delta: [Double], _ a: [Double], _ b: [[Double]], _ c: [[Double]],
  _ d: Double
) -> [Double] {
  var h = [Double](repeating: 0, count: a.count)
  var y: [Double] = []
  for t in x.indices {
    for n in h.indices { h[n] = Foundation.exp(delta[t] * a[n]) * h[n] + delta[t] * b[t][n] * x[t] }
    y.append(zip(c[t], h).map { $0 * $1 }.reduce(0, +) + d * x[t])
  }
  return y
}
