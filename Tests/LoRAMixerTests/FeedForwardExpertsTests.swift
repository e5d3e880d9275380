import Autodiff
import Foundation
import NN
import Testing

@testable import LoRAMixer

// MixLoRA, the baseline that builds its experts inside the feed-forward blocks: where its
// experts and its plain LoRAs sit, how a token is routed, and its balance loss. Its gradient
// check is in the routing catalog ("whole model with MixLoRA").

@Test func mixLoRARoutesOnlyTheFeedForwardBlocksAndAttentionHasAPlainSharedLoRA() throws {
  let mixture = GradientCheckCase.tinyFeedForwardMixture()
  for layer in mixture.model.model.layers {
    #expect(layer.mlp.replacement is FeedForwardExperts)
    for linear in [layer.mlp.gate, layer.mlp.up, layer.mlp.down] { #expect(linear.adapter == nil) }
    for linear in [
      layer.attention.query, layer.attention.key, layer.attention.value, layer.attention.output,
    ] {
      #expect(linear.adapter is LoRA)
    }
  }
  #expect(mixture.attention.count == 8)
  #expect(mixture.blocks.allSatisfy { $0.experts.count == 3 && $0.router.weight.shape == [3, 8] })
}

@Test func eachTokenGoesThroughItsTopTwoFeedForwardExpertsWeightedByTheirRenormalisedShare() {
  let mixture = GradientCheckCase.tinyFeedForwardMixture()
  let layer = mixture.model.model.layers[0]
  let block = mixture.blocks[0]
  let x = TestValues.signed.tensor([1, 4, 8], seed: 4)
  let output = block.output(of: layer.mlp, x).scalars
  let rows = x.reshaped([4, 8])
  let logits = matmul(rows, block.router.weight, transposeB: true).scalars
  for t in 0..<4 {
    // By hand: softmax over the three experts, the two largest kept and renormalised.
    let row = Array(logits[(t * 3)..<(t * 3 + 3)])
    let exps = row.map { Foundation.exp($0 - row.max()!) }
    let p = exps.map { $0 / exps.reduce(0, +) }
    let top = p.indices.sorted { p[$0] > p[$1] }.prefix(2)
    let token = rows.sliced(along: 0, t..<t + 1)
    var expected = [Double](repeating: 0, count: 8)
    for i in top {
      let expert = block.experts[i]
      let gate = layer.mlp.gate(token) + expert.gate.delta(token)
      let up = layer.mlp.up(token) + expert.up.delta(token)
      let hidden = swigluReference(gate: gate, up: up)
      let ffn = (layer.mlp.down(hidden) + expert.down.delta(hidden)).scalars
      let weight = p[i] / top.map { p[$0] }.reduce(0, +)
      for j in 0..<8 { expected[j] += weight * ffn[j] }
    }
    let got = Array(output[(t * 8)..<(t * 8 + 8)])
    #expect(zip(got, expected).map { abs($0 - $1) }.max()! < 1e-12, "token \(t)")
  }
}

@Test func mixtralsBalanceLossIsKWhenTheLoadIsEvenAndGrowsWhenItIsNot() {
  func routing(_ probabilities: [Double], _ selected: [Int], k: Int = 1) -> SiteRouting {
    let p = Tensor(shape: [2, 2], scalars: probabilities)
    return SiteRouting(
      scaledLogits: log(p), probabilities: p, weights: p, selected: selected, k: k,
      sparse: true)
  }
  let even = routing([0.5, 0.5, 0.5, 0.5], [0, 1])
  #expect(abs(FeedForwardMixture.balanceLoss(even, tokens: nil, experts: 2).item - 1) < 1e-12)
  // Top-2 of 2: every token takes both, each slot counted, so an even load gives k = 2.
  let both = routing([0.5, 0.5, 0.5, 0.5], [0, 1, 1, 0], k: 2)
  #expect(abs(FeedForwardMixture.balanceLoss(both, tokens: nil, experts: 2).item - 2) < 1e-12)
  let skewed = routing([0.9, 0.1, 0.8, 0.2], [0, 0])
  #expect(abs(FeedForwardMixture.balanceLoss(skewed, tokens: nil, experts: 2).item - 1.7) < 1e-12)
}
