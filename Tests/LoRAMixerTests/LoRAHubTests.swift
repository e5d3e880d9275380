import Autodiff
import NN
import Testing
import ToyTasks
import Training

@testable import LoRAMixer

// LoRAHub, the baseline that composes experts by their matrices: the composition's
// arithmetic, and the search that finds its weights.

/// Three rank-2 experts at two layer paths, in Float64.
private func hubExperts() -> [[String: LoRA]] {
  (0..<3).map { index in
    Dictionary(
      uniqueKeysWithValues: ["a", "b"].enumerated().map { offset, path in
        let seed = UInt64(10 * index + offset)
        return (
          path,
          LoRA(
            a: Linear(weight: TestValues.signed.tensor([2, 5], seed: seed)),
            b: Linear(weight: TestValues.signed.tensor([4, 2], seed: seed + 100)), scale: 1.5)
        )
      })
  }
}

@Test func aOneHotCompositionIsThatExpert() {
  let experts = hubExperts()
  for expert in 0..<3 {
    let composed = composeByMatrices(experts, weights: (0..<3).map { $0 == expert ? 1 : 0 })
    #expect(Set(composed.keys) == ["a", "b"])
    for (path, lora) in composed {
      #expect(lora.a.weight.scalars == experts[expert][path]!.a.weight.scalars)
      #expect(lora.b.weight.scalars == experts[expert][path]!.b.weight.scalars)
      #expect(lora.scale == 1.5)
    }
  }
}

@Test func composingMatricesScalesTheUpdateByTheWeightSquaredAndAddsCrossTerms() {
  let experts = hubExperts()
  // One expert at weight w: B·A is scaled by w², not by w as mixing outputs would.
  let single = composeByMatrices(experts, weights: [0, -0.7, 0])
  expectClose(
    single["a"]!.denseUpdate, experts[1]["a"]!.denseUpdate * 0.49, 1e-12, "w² · B₁A₁")
  // Two experts: (w₀B₀ + w₂B₂)(w₀A₀ + w₂A₂) holds the cross terms w₀w₂(B₀A₂ + B₂A₀).
  let pair = composeByMatrices(experts, weights: [0.5, 0, 2])
  let (a0, b0) = (experts[0]["b"]!.a.weight, experts[0]["b"]!.b.weight)
  let (a2, b2) = (experts[2]["b"]!.a.weight, experts[2]["b"]!.b.weight)
  let expected =
    (matmul(b0, a0) * 0.25 + matmul(b2, a2) * 4 + (matmul(b0, a2) + matmul(b2, a0)) * 1) * 1.5
  expectClose(pair["b"]!.denseUpdate, expected, 1e-12, "cross terms")
}

@Test func theOnePlusOneSearchFindsAQuadraticsMinimumWithinItsBounds() {
  // The minimum (0.3, -0.8, 2) lies outside the bound 1.5 in its last coordinate.
  var evaluations = 0
  let found = onePlusOneSearch(
    start: [0, 0, 0], bound: 1.5, step: 0.5, budget: 300, seed: 4
  ) { x in
    evaluations += 1
    return zip(x, [0.3, -0.8, 2]).map { ($0 - $1) * ($0 - $1) }.reduce(0, +)
  }
  #expect(evaluations == 300)
  #expect(abs(found.point[0] - 0.3) < 0.01 && abs(found.point[1] + 0.8) < 0.01)
  #expect(found.point[2] <= 1.5 && found.point[2] > 1.49)
  // With a budget of one it scores the start and nothing else.
  let start = onePlusOneSearch(start: [1, 1], bound: 1.5, step: 0.5, budget: 1, seed: 4) { _ in 7 }
  #expect(start.point == [1, 1] && start.score == 7)
}

@Test func theSearchLeavesItsBestCompositionAttachedAndBeatsTheBase() throws {
  let model = LlamaForCausalLM(
    GradientCheckCase.tinyConfiguration(tied: false), seed: 5, dtype: .float64)
  var experts: [[String: LoRA]] = []
  for index in 0..<3 {
    let adapters = attachLoRA(to: model, rank: 2, alpha: 4, seed: UInt64(20 + index))
    for (offset, (_, lora)) in adapters.enumerated() {
      lora.b.weight.assign(
        (TestValues.signed.tensor(lora.b.weight.shape, seed: UInt64(40 * index + offset)) * 0.3)
          .storage)
    }
    experts.append(Dictionary(uniqueKeysWithValues: adapters.map { ($0.path, $0.adapter) }))
  }
  for linear in model.namedModules().compactMap({ $0.module as? Linear }) { linear.adapter = nil }
  let words = ["a", "b", "c", "d", "e"]
  let examples = (0..<5).map {
    Example(prompt: "\(words[$0]) \(words[($0 + 1) % 5])", answer: words[$0])
  }
  let tokenizer = Tokenizer(examples: examples)
  let baseLoss = model.loss(examples, tokenizer: tokenizer).value.item
  var recipe = LoRAHubRecipe()
  recipe.budget = 30
  let found = recipe.search(
    model, experts: experts, examples: examples, tokenizer: tokenizer, seed: 1)
  // The start (all weights 0) is the base, scored without penalty; the search finds a
  // better point within its budget and leaves that composition on the model.
  #expect(found.score < baseLoss - 1e-6)
  #expect(found.weights.allSatisfy { abs($0) <= recipe.bound })
  let penalty = recipe.l1 * found.weights.map(abs).reduce(0, +) / 3
  let attached = model.loss(examples, tokenizer: tokenizer).value.item
  #expect(abs(attached + penalty - found.score) < 1e-9)
}
