import Autodiff
import Foundation
import Kernels
import NN
import Random
import Testing
import ToyTasks
import Training

@testable import LoRAMixer

// The mechanics the mixture's results rest on: fixed weights through the routed sites give
// exactly what the experts give, the causal router sees no later token, and a router can
// learn to tell two tasks apart.

@Test func oneHotWeightsAtEverySiteGiveThatExpertsLogits() {
  let mixture = GradientCheckCase.tinyMixture(mode: .hardsoft)
  let tokens = [1, 5, 2, 9, 4, 3, 7, 0, 10, 6, 8, 2]
  for expert in 0..<3 {
    let alone = mixture.usingOnly(expert: expert) {
      mixture.model.logits(tokens, batch: 2, length: 6)
    }
    let oneHot = mixture.blending({ _, _ in (0..<3).map { $0 == expert ? 1 : 0 } }) {
      mixture.model.logits(tokens, batch: 2, length: 6)
    }
    expectClose(oneHot, alone, 1e-12, "expert \(expert)")
  }
  // The blend is undone afterwards: the routers route again.
  let routed = mixture.forward(tokens, batch: 2, length: 6, phase: .inference).logits
  #expect(mixture.layers.allSatisfy { $0.adapter is RoutedSite })
  #expect(routed.shape == [2, 6, 11])
}

@Test func halfTheWeightIsHalfTheExpertsUpdate() {
  let (_, site, adapters) = siteFixture(experts: 3, settings: RoutingSettings()).parts
  let rows = siteInput.reshaped([8, 5])
  for expert in 0..<3 {
    let half = Tensor(shape: [8, 3], scalars: (0..<24).map { $0 % 3 == expert ? 0.5 : 0 })
    expectClose(
      site.delta(rows, weights: half), adapters[expert].delta(rows) * 0.5, 1e-12,
      "half of expert \(expert)")
  }
}

@Test func hardSoftWithKEqualToEGoesForwardLikeSoft() {
  let (hardsoft, _) = outputAndGradients(RoutingSettings(mode: .hardsoft, k: 3))
  let (soft, _) = outputAndGradients(RoutingSettings(mode: .soft, k: 3))
  expectClose(hardsoft, soft, 1e-12, "forward")
}

@Test(arguments: [RouterInput.prefixMean, .contentMean])
func aSequenceRouterSeesNoLaterToken(_ input: RouterInput) {
  let router = Router(weight: TestValues.signed.tensor([3, 5], seed: 30))
  let settings = RoutingSettings(mode: .soft, input: input, k: 2)
  let x = TestValues.signed.tensor([2, 4, 5], seed: 40).reshaped([8, 5])
  let routed = router.route(
    x, length: 4, settings: settings, training: true)
  // Position t of each sequence is routed by the mean of its inputs 0...t (a linear router),
  // or 1...t when `<bos>` (position 0) is left out, which routes by itself.
  for sequence in 0..<2 {
    for t in 0..<4 {
      let first = input == .contentMean && t > 0 ? 1 : 0
      let rows = (first...t).map { sequence * 4 + $0 }
      let mean = x.gatherRows(rows, shape: [rows.count]).mean(axes: [0], keepDimensions: true)
      let alone = router.route(
        mean, settings: RoutingSettings(mode: .soft, k: 2), training: true)
      expectClose(
        routed.probabilities.gatherRows([sequence * 4 + t], shape: [1]), alone.probabilities,
        1e-12, "sequence \(sequence) position \(t)")
    }
  }
  // Changing the last token of the first sequence changes its routing there only.
  var changed = x.scalars
  for column in 0..<5 { changed[3 * 5 + column] += 1 }
  let after = router.route(
    Tensor(shape: [8, 5], scalars: changed), length: 4, settings: settings, training: true)
  for row in 0..<8 {
    let same =
      routed.probabilities.gatherRows([row], shape: [1]).scalars
      == after.probabilities.gatherRows([row], shape: [1]).scalars
    #expect(same == (row != 3), "row \(row)")
  }
}

/// Two tasks that share no word but `<bos>`, `<sep>` and `<eos>`: task 0's prompts are
/// words a0...a7 and its answer `yes`; task 1's are b0...b7 and `no`. Each expert learns its
/// task's answer on a tiny random base; the routers, trained on the mixed set without task
/// labels, should then send each task's tokens to its own expert. Returns, per task, the
/// share of its tokens (`<bos>` left out: it opens every sequence of both tasks, so no
/// causal router can tell them apart there) whose first choice is its own expert, averaged
/// over the sites.
func ownShares(_ input: RouterInput, steps: Int) throws -> [Double] {
  let words = (0..<8).map { "a\($0)" } + (0..<8).map { "b\($0)" } + ["yes", "no"]
  let tokenizer = Tokenizer(words: words)
  var generator = SeededGenerator(seed: 5)
  let tasks = ["a", "b"].map { letter in
    (0..<64).map { _ in
      Example(
        prompt: (0..<4).map { _ in "\(letter)\(Int.random(in: 0..<8, using: &generator))" }
          .joined(separator: " "),
        answer: letter == "a" ? "yes" : "no")
    }
  }
  let model = LlamaForCausalLM(
    LlamaConfiguration(
      vocabularySize: tokenizer.count, hiddenSize: 16, layers: 2, heads: 2, intermediateSize: 32,
      contextLength: 8),
    seed: 1)
  model.setTrainable(false)
  var expertRecipe = ExpertRecipe.standard
  expertRecipe.rank = 2
  expertRecipe.alpha = 8
  expertRecipe.training = TrainingSettings(steps: 40, batchSize: 16, learningRate: 1e-2)
  var experts: [(name: String, adapters: [String: LoRA])] = []
  for (index, examples) in tasks.enumerated() {
    let (adapters, _) = try expertRecipe.train(
      model, on: examples, tokenizer: tokenizer, seed: UInt64(index))
    experts.append(
      ("task\(index)", Dictionary(uniqueKeysWithValues: adapters.map { ($0.path, $0.adapter) })))
    #expect(model.accuracy(examples, tokenizer: tokenizer) == 1, "expert \(index) learns its task")
  }
  var recipe = MixRecipe()
  recipe.routing.input = input
  recipe.training = TrainingSettings(steps: steps, batchSize: 16, learningRate: 3e-2)
  let mixture = Mixture(model: model, experts: experts, settings: recipe.routing, seed: 3)
  try mixture.train(
    on: MixRecipe.mixedExamples(tasks, count: 128, seed: 3), tokenizer: tokenizer,
    recipe: recipe, seed: 3)
  return tasks.enumerated().map { index, examples in
    #expect(mixture.accuracy(examples, tokenizer: tokenizer) == 1, "\(input): task \(index)")
    let batch = tokenizer.answerBatch(examples)
    var tally = RoutingTally(mixture)
    let routings = mixture.forward(
      batch.tokens, batch: batch.batch, length: batch.length, phase: .inference
    ).routings
    tally.add(
      routings, of: mixture,
      tokens: Mixture.realTokens(batch).filter { batch.tokens[$0] != Tokenizer.begin })
    return tally.firstChoiceShare[index]
  }
}

/// The default router learns to tell the tasks apart (85% of their tokens' first choices
/// on their own expert within 1,000 steps) and the paper's per-token router, given the
/// same steps, does not get as far: it must decide `<sep>` and `<eos>` alone at layer 0,
/// and there the two tasks look the same.
@Test func theDefaultRouterLearnsToSeparateTasksWithDisjointWords() throws {
  let standard = try ownShares(MixRecipe().routing.input, steps: 1000)
  let perToken = try ownShares(.token, steps: 1000)
  for task in 0..<2 {
    #expect(standard[task] >= 0.85, "task \(task): own expert first for \(standard[task])")
    #expect(
      standard[task] > perToken[task] + 0.1,
      "task \(task): default \(standard[task]), per token \(perToken[task])")
  }
}

@Test func aMixerConfigRecordsWhatRoutesAToken() throws {
  let folder = temporaryFolder("mixer-config")
  defer { try? FileManager.default.removeItem(at: folder) }
  try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
  func read(_ input: String?) throws -> RoutingSettings {
    let field = input.map { "\"router_input\": \"\($0)\", " } ?? ""
    let text =
      "{\"format\": \"tinymixer-mixer\", \"version\": 1, \"experts\": [{\"name\": \"a\", \"path\": \"experts/a\"}], \"target_modules\": [\"q_proj\"], \"routing_mode\": \"hardsoft\", \(field)\"top_k\": 1, \"inference_top_k\": 1, \"temperature\": 1.0}"
    try Data(text.utf8).write(to: folder.appendingPathComponent(MixerFiles.configName))
    return try MixerFiles.readConfig(folder).routing
  }
  for input in RouterInput.allCases { #expect(try read(input.rawValue).input == input) }
  // Mixers written before the setting existed routed each token by its own input.
  #expect(try read(nil).input == .token)
  #expect(throws: ModelFileError.self) { try read("sequence-mean") }
}

/// A batch run as groups of similar length has the loss and the gradients of the batch
/// padded as one: the task loss weighs each group by its scored tokens, and the routing
/// loss sees every group's real tokens at once, counting tokens or sequences.
@Test func aBatchRunInLengthGroupsHasTheWholeBatchsLossAndGradients() {
  let tokenizer = Tokenizer(words: ["a", "b", "c", "d", "yes", "no"])
  let examples = ["a b c", "d", "a b", "c", "b c d", "a"].enumerated().map {
    Example(prompt: $1, answer: $0 % 2 == 0 ? "yes" : "no")
  }
  #expect(tokenizer.answerBatches(examples, groups: 3).count == 3)
  for counting in BalanceCounting.allCases {
    let mixture = GradientCheckCase.tinyMixture(mode: .hardsoft)
    mixture.settings.input = .contentMean
    let settings = RoutingLossSettings(alpha: 0.3, lambda: 0.2, counting: counting)
    let routers = mixture.routerParameters().map(\.tensor)
    func lossAndGradients(groups: Int) -> (MixtureLoss, [Tensor]) {
      var loss: MixtureLoss? = nil
      let (_, gradients) = valueAndGradients(of: routers) {
        loss = mixture.loss(
          examples, tokenizer: tokenizer, routingLoss: settings, lengthGroups: groups)
        return loss!.value
      }
      return (loss!, gradients)
    }
    let (whole, wholeGradients) = lossAndGradients(groups: 1)
    let (grouped, groupedGradients) = lossAndGradients(groups: 3)
    #expect(grouped.tokens < whole.tokens, "the groups compute less padding")
    #expect(abs(grouped.value.item - whole.value.item) < 1e-12, "\(counting)")
    #expect(abs(grouped.routing.balance - whole.routing.balance) < 1e-12, "\(counting)")
    for (a, b) in zip(groupedGradients, wholeGradients) {
      expectClose(a, b, 1e-12, "router gradient, balance per \(counting)")
    }
  }
}

/// A routed site in training adds its experts into the base product (`RoutedSite.output`):
/// the loss and every gradient keep the bits of the Linear's plain sum, through layers whose
/// q, k and v share their input (whose gradient sums their contributions in a fixed order).
@Test(arguments: [RoutingMode.hardsoft, .soft])
func addingTheExpertsIntoTheBaseKeepsThePlainSumsBits(mode: RoutingMode) {
  func lossAndGradients(addingIntoBase: Bool) -> [[UInt64]] {
    RoutedSite.$addsIntoBase.withValue(addingIntoBase) {
      let mixture = GradientCheckCase.tinyMixture(mode: mode)
      for (_, tensor) in mixture.expertParameters() { tensor.requiresGradient = true }
      let parameters = mixture.routerParameters() + mixture.expertParameters()
      let tape = Tape()
      let loss = tape.record { GradientCheckCase.routedLoss(mixture) }
      let gradients = tape.gradients(of: loss)
      // Bit patterns, so that −0 and +0 differ too.
      return ([loss.scalars] + parameters.map { gradients[$0.tensor]!.scalars }).map {
        $0.map(\.bitPattern)
      }
    }
  }
  #expect(lossAndGradients(addingIntoBase: true) == lossAndGradients(addingIntoBase: false))
}

/// The fused weighting of the experts' stacked ranks (`weightedRanks`) keeps the bits of its
/// reference `h ⊙ (w · S)`: the output and both gradients, in Float and Double, with weights
/// that are zero where a token did not select an expert (hard top-k) and an absent expert.
/// 37 rows of 19 columns: the weights' gradient runs eight rows at a time, their columns
/// turned in blocks of eight, so the shape leaves five rows and three columns over.
@Test(arguments: [DType.float32, .float64])
func weightingTheStackedRanksKeepsTheReferencesBits(dtype: DType) {
  let ranks = [
    RankColumns(expert: 0, columns: 0..<8, scale: 2),
    RankColumns(expert: 2, columns: 8..<11, scale: 0.75),
    RankColumns(expert: 3, columns: 11..<19, scale: 3.2),
  ]
  func values(_ kind: TestValues, _ shape: [Int], seed: UInt64) -> Tensor {
    Tensor(shape: shape, scalars: kind.tensor(shape, seed: seed).scalars, dtype: dtype)
  }
  var weightValues = TestValues.positive.tensor([37, 4], seed: 2).scalars
  for index in stride(from: 0, to: weightValues.count, by: 3) { weightValues[index] = 0 }
  func outputAndGradients(_ weigh: (Tensor, Tensor) -> Tensor) -> [[UInt64]] {
    let h = values(.signed, [37, 19], seed: 1)
    let weights = Tensor(shape: [37, 4], scalars: weightValues, dtype: dtype)
    (h.requiresGradient, weights.requiresGradient) = (true, true)
    let tape = Tape()
    var output = h
    let loss = tape.record {
      output = weigh(h, weights)
      return (output * values(.signed, [37, 19], seed: 3)).sum()
    }
    let gradients = tape.gradients(of: loss)
    return [output.scalars, gradients[h]!.scalars, gradients[weights]!.scalars].map {
      $0.map(\.bitPattern)
    }
  }
  let fused = outputAndGradients { weightedRanks($0, weights: $1, ranks: ranks) }
  let reference = outputAndGradients { weightedRanksReference($0, weights: $1, ranks: ranks) }
  #expect(fused == reference)
  #expect(
    fused[2].contains { Double(bitPattern: $0) != 0 }, "the weights' gradient is not all zero")
}
