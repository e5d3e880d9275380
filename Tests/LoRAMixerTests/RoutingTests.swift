import Autodiff
import Foundation
import NN
import Random
import Testing
import ToyTasks
import Training

@testable import LoRAMixer

@Test(arguments: GradientCheckCase.routing)
func routingPassesGradientCheck(_ check: GradientCheckCase) {
  let result = check.run()
  #expect(result.passed, "\(check.name): relative error \(result.maxRelativeError)")
}

/// A frozen Float64 Linear `[6, 5]` with a site over `experts` LoRA experts (ranks 1, 2, 3,
/// ...), B away from zero, and a router away from ties.
struct SiteFixture {
  let linear: Linear
  let site: RoutedSite
  let adapters: [LoRA]
  let phase: RoutingPhase

  /// The Linear's output for `x`, its site routing by the fixture's phase, and the routing.
  func routed(_ x: Tensor) -> (output: Tensor, routing: SiteRouting) {
    let (output, records) = site.state.run(phase) { linear(x) }
    return (output, records.last!.routing)
  }

  /// The Linear's output for `x`, its site routing by the fixture's phase.
  func callAsFunction(_ x: Tensor) -> Tensor { routed(x).output }

  /// The Linear, the site and the experts.
  var parts: (Linear, RoutedSite, [LoRA]) { (linear, site, adapters) }
}

func siteFixture(experts: Int, settings: RoutingSettings, training: Bool = true) -> SiteFixture {
  let linear = Linear(weight: TestValues.signed.tensor([6, 5], seed: 1))
  linear.weight.requiresGradient = false
  let adapters = (0..<experts).map { index in
    LoRA(
      a: Linear(weight: TestValues.signed.tensor([index + 1, 5], seed: 10 + UInt64(index))),
      b: Linear(weight: TestValues.signed.tensor([6, index + 1], seed: 20 + UInt64(index))),
      scale: 0.5 + Double(index))
  }
  let site = RoutedSite(
    experts: adapters, names: adapters.indices.map { "e\($0)" },
    router: Router(weight: TestValues.signed.tensor([experts, 5], seed: 30)), outputs: 6,
    state: RoutingState(settings: settings))
  linear.adapter = site
  return SiteFixture(
    linear: linear, site: site, adapters: adapters, phase: training ? .training : .inference)
}

var siteInput: Tensor { TestValues.signed.tensor([2, 4, 5], seed: 40) }

func expectClose(_ a: Tensor, _ b: Tensor, _ tolerance: Double = 1e-12, _ what: String) {
  #expect(a.shape == b.shape, "\(what): shapes")
  let worst = zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? 0
  #expect(worst <= tolerance, "\(what): differ by \(worst)")
}

@Test func oneExpertWithWeightOneIsThePlainLoRALayer() {
  for (mode, training) in [
    (RoutingMode.soft, true), (.topk, true), (.hardsoft, true), (.soft, false),
  ] {
    let fixture = siteFixture(
      experts: 1, settings: RoutingSettings(mode: mode, k: 1), training: training)
    let routed = fixture(siteInput)
    fixture.linear.adapter = fixture.adapters[0]
    expectClose(routed, fixture.linear(siteInput), 1e-12, "\(mode) training \(training)")
  }
}

@Test func allWeightsZeroIsTheBaseLayerAndOneHotIsThatExpert() {
  let (linear, site, adapters) = siteFixture(experts: 3, settings: RoutingSettings()).parts
  let rows = siteInput.reshaped([8, 5])
  let zero = site.delta(rows, weights: .zeros([8, 3], dtype: .float64))
  expectClose(
    matmul(rows, linear.weight, transposeB: true) + zero,
    matmul(rows, linear.weight, transposeB: true), 0, "zero weights")
  #expect(zero.scalars.allSatisfy { $0 == 0 })
  for expert in 0..<3 {
    let oneHot = Tensor(shape: [8, 3], scalars: (0..<24).map { $0 % 3 == expert ? 1.0 : 0 })
    expectClose(
      site.delta(rows, weights: oneHot), adapters[expert].delta(rows), 1e-12, "one-hot \(expert)")
  }
}

/// The site's output and the gradients of `Σ c ⊙ output` with respect to the input, the
/// router and every expert factor.
func outputAndGradients(_ settings: RoutingSettings, experts: Int = 3) -> (Tensor, [Tensor]) {
  let fixture = siteFixture(experts: experts, settings: settings)
  let (site, adapters) = (fixture.site, fixture.adapters)
  let input = siteInput.detached()
  input.requiresGradient = true
  let parameters =
    [input, site.router.weight] + adapters.flatMap { [$0.a.weight, $0.b.weight] }
  var output: Tensor? = nil
  let (_, gradients) = valueAndGradients(of: parameters) {
    let y = fixture(input)
    output = y
    return (y * TestValues.signed.tensor(y.shape, seed: 50)).sum()
  }
  return (output!, gradients)
}

@Test func topKWithKEqualToEIsSoft() {
  let (soft, softGradients) = outputAndGradients(RoutingSettings(mode: .soft, k: 3))
  let (topk, topkGradients) = outputAndGradients(RoutingSettings(mode: .topk, k: 3))
  expectClose(topk, soft, 1e-12, "output")
  for (index, (a, b)) in zip(topkGradients, softGradients).enumerated() {
    expectClose(a, b, 1e-12, "gradient \(index)")
  }
}

@Test func hardSoftGoesForwardLikeTopKAndBackLikeSoft() {
  let settings = RoutingSettings(mode: .hardsoft, k: 2)
  let (hardsoft, hardsoftGradients) = outputAndGradients(settings)
  let (topk, topkGradients) = outputAndGradients(RoutingSettings(mode: .topk, k: 2))
  let (soft, _) = outputAndGradients(RoutingSettings(mode: .soft, k: 2))
  expectClose(hardsoft, topk, 1e-12, "forward")
  #expect(
    zip(hardsoft.scalars, soft.scalars).contains { abs($0 - $1) > 1e-3 },
    "top-2 of 3 differs from soft")

  // Backward: the gradient reaching the router's logits is soft's, given the same gradient
  // of the weights. Compare the router alone, under a loss linear in its weights.
  let x = TestValues.signed.tensor([8, 5], seed: 60)
  let c = TestValues.signed.tensor([8, 3], seed: 61)
  func routerGradients(_ mode: RoutingMode) -> [Tensor] {
    let router = Router(weight: TestValues.signed.tensor([3, 5], seed: 30))
    let input = x.detached()
    input.requiresGradient = true
    return valueAndGradients(of: [input, router.weight]) {
      let routing = router.route(
        input, settings: RoutingSettings(mode: mode, k: 2),
        training: true)
      return (routing.weights * c).sum()
    }.gradients
  }
  for (index, (a, b)) in zip(routerGradients(.hardsoft), routerGradients(.soft)).enumerated() {
    expectClose(a, b, 1e-12, "router gradient \(index)")
  }
  let topkRouter = routerGradients(.topk)
  #expect(
    zip(topkRouter[1].scalars, routerGradients(.soft)[1].scalars).contains { abs($0 - $1) > 1e-3 })
  // The whole site: the experts see hard-soft's forward weights, so their gradients are
  // top-k's, not soft's.
  for index in 2..<8 {
    expectClose(hardsoftGradients[index], topkGradients[index], 1e-12, "expert factor \(index)")
  }
}

@Test func balanceIsOneAtUniformRoutingForEveryK() {
  let x = TestValues.signed.tensor([10, 5], seed: 70)
  for experts in [2, 4, 5] {
    for k in 1...experts {
      let router = Router(weight: .zeros([experts, 5], dtype: .float64))
      let routing = router.route(
        x, settings: RoutingSettings(k: k),
        training: true)
      #expect(
        abs(balanceTerm(routing, tokens: nil, experts: experts).item - 1) < 1e-12,
        "E \(experts) k \(k)")
      #expect(abs(meanEntropy(routing, tokens: nil).item - Foundation.log(Double(experts))) < 1e-12)
    }
  }
}

@Test func balanceGrowsWhenOneExpertTakesTheLoad() {
  let x = TestValues.positive.tensor([10, 5], seed: 70)
  var weight = [Double](repeating: 0, count: 15)
  for column in 0..<5 { weight[column] = 3 }  // expert 0 wins every token
  let routing = Router(weight: Tensor(shape: [3, 5], scalars: weight)).route(
    x, settings: RoutingSettings(k: 1), training: true)
  let balance = balanceTerm(routing, tokens: nil, experts: 3).item
  #expect(balance > 2.9 && balance <= 3)
  var tally = SiteTally(site: "s", experts: 3, presentCount: 3)
  tally.add(routing, tokens: nil)
  #expect(tally.collapsed)
  #expect(abs(tally.balance - balance) < 1e-9)
}

@Test func perSequenceBalanceCallsASpecialisedRouterBalancedWhateverTheLengths() {
  // Two sequences of 4 rows: the first has 3 real tokens, all on expert 0; the second has
  // 1 real token, on expert 1. Counting tokens, expert 0 carries 3/4 of the load.
  var x = [Double](repeating: 0, count: 16)
  for row in 0..<8 { x[row * 2 + (row < 4 ? 0 : 1)] = 1 }
  let routing = Router(weight: Tensor(shape: [2, 2], scalars: [30, 0, 0, 30] as [Double])).route(
    Tensor(shape: [8, 2], scalars: x), length: 4,
    settings: RoutingSettings(k: 1), training: true)
  let real = [0, 1, 2, 4]
  let sequences = [0, 0, 0, 0, 1, 1, 1, 1]
  #expect(balanceWeights(tokens: real, rowCount: 8, counting: .token, sequences: sequences) == nil)
  let weights = balanceWeights(
    tokens: real, rowCount: 8, counting: .sequence, sequences: sequences)
  let perToken = balanceTerm(routing, tokens: real, experts: 2)
  let perSequence = balanceTerm(routing, tokens: real, experts: 2, weights: weights)
  let expected: Double = 2 * (0.75 * 0.75 + 0.25 * 0.25)  // E · Σ p̄ f with p̄ = f = (3/4, 1/4)
  #expect(abs(perToken.item - expected) < 1e-9)
  #expect(abs(perSequence.item - 1) < 1e-9)
}

@Test func anAbsentExpertGetsNoProbabilityNoSlotAndNoEntropy() {
  let router = Router(
    weight: TestValues.signed.tensor([3, 5], seed: 80), present: [true, false, true])
  let routing = router.route(
    TestValues.signed.tensor([6, 5], seed: 81),
    settings: RoutingSettings(k: 3), training: true)
  #expect(routing.k == 2)
  #expect(!routing.selected.contains(1))
  let p = routing.probabilities.scalars
  #expect((0..<6).allSatisfy { p[$0 * 3 + 1] == 0 })
  #expect(meanEntropy(routing, tokens: nil).item.isFinite)
}

@Test func inferenceComputesOnlyTheSelectedExpertsAndMatchesTopK() {
  let inference = siteFixture(
    experts: 3, settings: RoutingSettings(mode: .hardsoft, k: 3, inferenceK: 1), training: false)
  let topOne = siteFixture(experts: 3, settings: RoutingSettings(mode: .topk, k: 1))
  let (output, routing) = inference.routed(siteInput)
  expectClose(output, topOne(siteInput), 1e-12, "inference = top-1")
  #expect(routing.sparse)
  #expect(routing.k == 1)
}

@Test(arguments: [false, true])
func stageTwoTrainsOnlyTheRoutersAndLowersTheLoss(mamba: Bool) throws {
  let mixture = GradientCheckCase.tinyMixture(mode: .hardsoft, mamba: mamba)
  // Two layers' sites: the Mamba's four mixer projections, or the Llama's attention.
  #expect(mixture.sites.count == 8)
  #expect(
    Set(mixture.sites.map { String($0.path.split(separator: ".").last!) })
      == Set(mamba ? mambaProjections : attentionProjections))
  let before = mixture.expertParameters().map(\.tensor.scalars)
  let frozenBase = mixture.model.namedParameters().filter {
    !$0.name.contains(".router.") && !$0.name.contains(".experts.")
  }
  #expect(frozenBase.allSatisfy { !$0.tensor.requiresGradient })
  var losses: [Double] = []
  for _ in 0..<30 {
    let (value, gradients) = valueAndGradients(of: mixture.routerParameters().map(\.tensor)) {
      mixture.routing.run(.training) { GradientCheckCase.tinyLoss(mixture.model) }.result
    }
    losses.append(value.item)
    for (router, gradient) in zip(mixture.routers, gradients) {
      router.weight.assign((router.weight.detached() - gradient * 0.5).storage)
    }
  }
  #expect(losses.last! < losses.first! - 1e-3)
  #expect(mixture.expertParameters().map(\.tensor.scalars) == before)
}

@Test func mixedExamplesDrawEvenlyFromEveryTask() {
  let pools = (0..<3).map { task in (0..<50).map { Example(prompt: "t\(task) \($0)", answer: "a") }
  }
  let mixed = MixRecipe.mixedExamples(pools, count: 31, seed: 1)
  #expect(mixed.count == 31)
  let counts = (0..<3).map { task in mixed.filter { $0.prompt.hasPrefix("t\(task) ") }.count }
  #expect(counts == [11, 10, 10])
  #expect(Set(mixed.map(\.prompt)).count == 31)
  #expect(MixRecipe.mixedExamples(pools, count: 31, seed: 1) == mixed)
}

@Test func mixtureTrainingResumesBitForBit() throws {
  let tokenizer = Tokenizer(words: (0..<12).map { "w\($0)" })
  let examples = (0..<12).map { Example(prompt: "w\($0) w\(($0 + 5) % 12)", answer: "w\($0 % 3)") }
  var recipe = MixRecipe()
  recipe.training = TrainingSettings(steps: 6, batchSize: 4, learningRate: 1e-2)
  recipe.joint = true
  func mixture() -> Mixture {
    let model = LlamaForCausalLM(small, seed: 1)
    let experts = (0..<3).map { index in
      let adapters = attachLoRA(to: model, rank: 2, alpha: 4, seed: UInt64(10 + index))
      var generator = SeededGenerator(seed: UInt64(20 + index))
      for (_, lora) in adapters {
        lora.b.weight.assign(
          Tensor.normal(lora.b.weight.shape, standardDeviation: 0.1, generator: &generator).storage
        )
      }
      return (
        name: "e\(index)",
        adapters: Dictionary(uniqueKeysWithValues: adapters.map { ($0.path, $0.adapter) })
      )
    }
    return Mixture(model: model, experts: experts, seed: 3)
  }
  func state(_ mixture: Mixture) -> [[Float]] {
    (mixture.routerParameters() + mixture.expertParameters()).map(\.tensor.floats)
  }
  let folder = temporaryFolder("mix-checkpoint")
  defer { try? FileManager.default.removeItem(at: folder) }
  let file = folder.appendingPathComponent(TrainingCheckpoint.fileName)

  let straight = mixture()
  let losses = try straight.train(on: examples, tokenizer: tokenizer, recipe: recipe, seed: 4)
  let stopped = mixture()
  var steps = 0
  #expect(throws: TrainingError.interrupted(step: 2, file: file.path)) {
    try stopped.train(
      on: examples, tokenizer: tokenizer, recipe: recipe, seed: 4,
      checkpoint: CheckpointPolicy(
        file: file, every: 5,
        shouldStop: {
          steps += 1
          return steps == 2
        }))
  }
  #expect(state(stopped) != state(straight))
  let resumed = mixture()
  let resumedLosses = try resumed.train(
    on: examples, tokenizer: tokenizer, recipe: recipe, seed: 4,
    checkpoint: CheckpointPolicy(file: file, every: 5, resume: true))
  #expect(resumedLosses == losses)
  #expect(state(resumed) == state(straight))
}

/// The router z-loss is the mean squared log-sum-exp of the logits over the counted rows,
/// and an absent expert (logit -1e9) adds nothing to it.
@Test func theRouterZLossIsTheMeanSquaredLogSumExpOfTheCountedRows() {
  let logits = Tensor(shape: [3, 3], scalars: [0, 0, -1e9, 1, 2, -1e9, 5, 5, -1e9])
  let routing = SiteRouting(
    scaledLogits: logits, probabilities: logits.softmax(), weights: logits.softmax(),
    selected: [0, 1, 1, 0, 0, 1], k: 2, sparse: false)
  let first = Foundation.log(2.0)
  let second = 2 + Foundation.log(1 + Foundation.exp(-1.0))
  let expected = (first * first + second * second) / 2
  #expect(abs(routerZLoss(routing, tokens: [0, 1]).item - expected) < 1e-12)
  let all = (expected * 2 + Foundation.pow(5 + Foundation.log(2.0), 2)) / 3
  #expect(abs(routerZLoss(routing, tokens: nil).item - all) < 1e-12)
}

/// The routing loss's two terms, each one fused operation (`tokenBalance`, `meanRowEntropy`),
/// keep the bits of their primitive references: the value and the gradients of the router
/// and of its input, in Float, over every row and over some, with an absent expert.
@Test(arguments: [nil, [0, 2, 3, 5, 6]] as [[Int]?])
func theRoutingTermsKeepTheirReferencesBits(tokens: [Int]?) {
  func float(_ shape: [Int], seed: UInt64) -> Tensor {
    Tensor(
      shape: shape, scalars: TestValues.signed.tensor(shape, seed: seed).scalars,
      dtype: .float32)
  }
  func valueAndGradients(
    _ balance: (SiteRouting) -> Tensor, _ entropy: (SiteRouting) -> Tensor
  ) -> [[UInt64]] {
    let x = float([7, 5], seed: 1)
    let router = Router(weight: float([4, 5], seed: 2), present: [true, false, true, true])
    x.requiresGradient = true
    let tape = Tape()
    let loss = tape.record {
      let routing = router.route(
        x, settings: RoutingSettings(mode: .hardsoft, k: 2), training: true)
      return balance(routing) * 0.3 - entropy(routing) * 0.2
    }
    let gradients = tape.gradients(of: loss)
    return [loss.scalars, gradients[router.weight]!.scalars, gradients[x]!.scalars].map {
      $0.map(\.bitPattern)
    }
  }
  let fused = valueAndGradients(
    { balanceTerm($0, tokens: tokens, experts: 3) }, { meanEntropy($0, tokens: tokens) })
  let reference = valueAndGradients(
    { balanceTermReference($0, tokens: tokens, experts: 3) },
    { meanEntropyReference($0, tokens: tokens) })
  #expect(fused == reference)
  #expect(
    fused[1].contains { Double(bitPattern: $0) != 0 }, "the router's gradient is not all zero")
}
