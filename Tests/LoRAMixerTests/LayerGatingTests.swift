import Autodiff
import Foundation
import NN
import Testing

@testable import LoRAMixer

// MoLE, the baseline that mixes the experts by one gate per decoder layer over their
// outputs: what the gate reads, where its weights apply, and its balance loss. Its
// gradient check is in the routing catalog ("whole layer-gated model (MoLE)").

@Test func oneGatePerLayerComputedAtItsFirstSiteWeighsEveryProjectionOfTheLayer() {
  let mixture = GradientCheckCase.tinyLayerGatedMixture()
  #expect(mixture.gates.count == 2)
  for (layer, gate) in mixture.gates.enumerated() {
    let sites = mixture.sites.filter { Mixture.decoderLayer($0.path) == layer }
    #expect(
      sites.map { $0.path.split(separator: ".").last! } == ["q_proj", "k_proj", "v_proj", "o_proj"])
    #expect(sites.allSatisfy { $0.site.gate === gate })
    #expect(sites.map(\.site.computesGate) == [true, false, false, false])
  }
  // Every site of a layer adds Σ_i w_i · (expert i's output) with the layer's one w.
  let x = TestValues.signed.tensor([1, 5, 8], seed: 1)
  let (path, first) = mixture.sites[0]
  let second = mixture.sites[1].site
  _ = first.delta(x)
  let weights = first.gate.current!
  let rows = x.reshaped([5, 8])
  let expected = second.experts.indices.map {
    second.experts[$0].delta(rows) * weights.sliced(along: 1, $0..<$0 + 1)
  }.reduce(nil as Tensor?) { sum, term in sum.map { $0 + term } ?? term }!
  let difference = zip(second.delta(x).scalars, expected.scalars).map { abs($0 - $1) }.max()!
  #expect(difference < 1e-14, "\(path)'s layer weighs k_proj by other weights")
}

@Test func theGateReadsTheExpertsOutputsAveragedOverTheSequenceSoFar() {
  let mixture = GradientCheckCase.tinyLayerGatedMixture()
  let site = mixture.sites[0].site
  let x = TestValues.signed.tensor([1, 4, 8], seed: 2)
  let rows = x.reshaped([4, 8])
  let weights = site.gate.weigh(site.experts.map { $0.delta(rows) }, length: 4).scalars
  // By hand: each expert's output averaged over tokens 1...t (token 0 alone), the experts'
  // averages normalised together by their root mean square, scored against e, softmax / τ.
  let outputs = site.experts.map { $0.delta(rows).scalars }
  let e = site.gate.e.scalars
  for t in 0..<4 {
    let first = t == 0 ? 0 : 1
    let count = Double(t + 1 - first)
    let means: [[Double]] = outputs.map { output in
      (0..<8).map { j in
        var sum = 0.0
        for s in first...t { sum += output[s * 8 + j] }
        return sum / count
      }
    }
    let all = means.flatMap { $0 }
    var squares = 0.0
    for value in all { squares += value * value }
    let rms = (squares / Double(all.count) + 1e-6).squareRoot()
    let logits: [Double] = means.map { mean in
      var dot = 0.0
      for j in 0..<8 { dot += mean[j] * e[j] }
      return dot / rms / 0.8
    }
    let largest = logits.max()!
    let exps = logits.map { Foundation.exp($0 - largest) }
    let byHand = exps.map { $0 / exps.reduce(0, +) }
    for i in 0..<3 { #expect(abs(weights[t * 3 + i] - byHand[i]) < 1e-12) }
  }
  // Causal: changing the last token leaves the earlier tokens' weights alone, and an expert
  // whose output changes moves the gate.
  let changed = x.scalars.enumerated().map { $0.offset >= 24 ? $0.element + 1 : $0.element }
  let later = Tensor(shape: [4, 8], scalars: changed)
  let moved = site.gate.weigh(site.experts.map { $0.delta(later) }, length: 4).scalars
  #expect(Array(moved.prefix(9)) == Array(weights.prefix(9)))
  #expect(Array(moved.suffix(3)) != Array(weights.suffix(3)))
}

@Test func theBalanceLossIsSmallestWhenEveryExpertGetsAnEvenShare() {
  let even = Tensor(shape: [2, 3], scalars: [0.5, 0.25, 0.25, 0.0, 0.5, 0.5])
  let balanced = LayerGatedMixture.balanceLoss([even], rows: [[0, 1]]).item
  #expect(abs(balanced - 3 * Foundation.log(3.0)) > 0.01)  // q = (0.25, 0.375, 0.375)
  let uniform = Tensor(shape: [2, 3], scalars: [Double](repeating: 1.0 / 3, count: 6))
  #expect(
    abs(LayerGatedMixture.balanceLoss([uniform], rows: [[0, 1]]).item - 3 * Foundation.log(3.0))
      < 1e-12)
  #expect(balanced > LayerGatedMixture.balanceLoss([uniform], rows: [[0, 1]]).item)
  // Only the given rows count: row 1 alone is (0, 0.5, 0.5), whose loss is infinite.
  #expect(LayerGatedMixture.balanceLoss([even], rows: [[1]]).item.isInfinite)
}
