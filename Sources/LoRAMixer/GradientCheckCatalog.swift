import Autodiff
import Kernels
import NN

extension GradientCheckCase {
  /// LoRA: a wrapped Linear with respect to its input and both factors, and a whole tiny
  /// model with LoRA on every attention projection with respect to every adapter weight.
  public static var lora: [GradientCheckCase] {
    [
      .on(
        "lora linear (frozen base, A, B)",
        [([2, 3, 5], .signed), ([2, 5], .signed), ([4, 2], .signed)]
      ) { t in
        let linear = Linear(weight: TestValues.signed.tensor([4, 5], seed: 9))
        linear.weight.requiresGradient = false
        linear.adapter = LoRA(a: Linear(weight: t[1]), b: Linear(weight: t[2]), scale: 1.5)
        return linear(t[0])
      },
      GradientCheckCase(
        "whole model with lora (adapters only)",
        parameterShapes: [[2, 8], [8, 2]].repeated(4 * 2),
        method: .randomProjections(count: 2)
      ) {
        let model = LlamaForCausalLM(tinyConfiguration(tied: false), seed: 3, dtype: .float64)
        let adapters = attachLoRA(to: model, rank: 2, alpha: 3, seed: 4)
        for (_, lora) in adapters {
          // B away from zero, so that A's gradient is not zero.
          lora.b.weight.assign(TestValues.signed.tensor(lora.b.weight.shape, seed: 5).storage)
        }
        return (model.trainableParameters().map(\.tensor), { tinyLoss(model) })
      },
    ]
  }

  /// LoRA-Mixer: the weighting of the experts' stacked ranks, the two products a hard-routed
  /// site computes without its zero blocks, a routed site in `soft` and `topk` modes (with
  /// an absent expert), the router's RSL with both entropy signs, the plain balance loss,
  /// the preservation term, and a whole tiny routed model's loss with RSL, with respect to
  /// routers and experts.
  public static var routing: [GradientCheckCase] {
    let siteInputs: [([Int], TestValues)] = [
      ([2, 3, 5], .signed), ([4, 5], .signed), ([2, 5], .signed), ([4, 2], .signed),
      ([3, 5], .signed), ([4, 3], .signed),
    ]
    // Stacked ranks of 3 experts over 4 routing columns: expert 1 absent, ranks 2, 1 and 2.
    let ranks = [
      RankColumns(expert: 0, columns: 0..<2, scale: 1.5),
      RankColumns(expert: 2, columns: 2..<3, scale: 0.5),
      RankColumns(expert: 3, columns: 3..<5, scale: 2),
    ]
    let rankInputs: [([Int], TestValues)] = [([3, 5], .signed), ([3, 4], .signed)]
    var cases: [GradientCheckCase] = [
      .on("weighted ranks (fused; h, weights)", rankInputs) {
        weightedRanks($0[0], weights: $0[1], ranks: ranks)
      },
      .on("weighted ranks (reference)", rankInputs) {
        weightedRanksReference($0[0], weights: $0[1], ranks: ranks)
      },
      // A hard-routed site's two products that skip zero blocks: `x · A_allᵀ` (whose
      // gradient for x skips dh's) and the Linear plus the weighted ranks (whose update skips
      // theirs), with hard weights that leave an expert out in each row.
      .on(
        "hard-routed ranks and update, zero blocks skipped (x, A_all, B_all)",
        [([3, 5], .signed), ([5, 5], .signed), ([4, 5], .signed)]
      ) { t in
        let weights: [Double] = [0.25, 0, 0, 0.75, 0, 0, 0.5, 0.5, 0.5, 0, 0.5, 0]
        let hard = Tensor(shape: [3, 4], scalars: weights, dtype: .float64)
        // Each expert's columns, with the rows that weigh it: two a row.
        let blocks = BlockRows(
          blocks: ranks.map(\.columns),
          selected: (0..<3).flatMap { row in
            ranks.indices.filter { weights[row * 4 + ranks[$0].expert] != 0 }
          }, perRow: 2)
        let weighted = weightedRanks(
          hardRoutedRanks(t[0], t[1], zeroBlocks: blocks), weights: hard, ranks: ranks)
        return linearPlusUpdate(
          t[0], weight: TestValues.signed.tensor([4, 5], seed: 9), update: weighted, b: t[2],
          zeroBlocks: blocks)
      },
      .on(
        "mean entropy of rows (fused; probabilities, logits)",
        [
          ([3, 4], .positive), ([3, 4], .signed),
        ]
      ) { meanRowEntropy(probabilities: $0[0], logits: $0[1]) },
      .on("token balance (fused; probabilities)", [([3, 4], .positive)]) {
        tokenBalance(probabilities: $0[0], shares: [0.5, 0, 0.25, 0.25], experts: 3)
      },
    ]
    cases += [RoutingMode.soft, .topk].map { mode in
      GradientCheckCase.on("routed site, \(mode) top-2 of 3 (+1 absent)", siteInputs) { t in
        let (linear, state) = routedSite(t, mode: mode)
        return state.run(.training) { linear(t[0]) }.result
      }
    }
    for (kind, sign, input, counting) in [
      (RoutingLossKind.rsl, EntropySign.spread, RouterInput.token, BalanceCounting.token),
      (.rsl, .sharpen, .token, .token), (.aux, .spread, .token, .token),
      (.rsl, .spread, .prefixMean, .token), (.rsl, .spread, .contentMean, .token),
      (.rsl, .spread, .contentMean, .sequence), (.entropy, .sharpen, .token, .token),
    ] {
      let name =
        (kind == .aux
          ? "aux balance loss + router z-loss"
          : kind == .entropy
            ? "router with the entropy term alone (\(sign))" : "router with RSL (\(sign))")
        + (input == .token ? "" : ", \(input.rawValue) of 2 sequences")
        + (counting == .token ? "" : ", balance per sequence")
      cases.append(
        .on(name, [([6, 5], .signed), ([4, 5], .signed)]) { t in
          let router = Router(weight: t[1], present: [true, true, false, true])
          let settings = RoutingSettings(mode: .soft, input: input, k: 2, temperature: 0.7)
          let routing = router.route(t[0], length: 3, settings: settings, training: true)
          return routingLoss(
            [(routing, 3)], tokens: [0, 2, 3, 5], sequences: [0, 0, 0, 1, 1, 1],
            settings: RoutingLossSettings(
              kind: kind, entropy: sign, alpha: 0.5, lambda: 0.3, counting: counting,
              zLoss: kind == .aux ? 0.2 : 0)
          ).loss
        })
    }
    cases.append(
      GradientCheckCase(
        "preservation penalty", parameterShapes: [[2, 5], [4, 2]], method: .fullJacobian
      ) {
        let parameters = [
          TestValues.signed.tensor([2, 5], seed: 1), TestValues.signed.tensor([4, 2], seed: 2),
        ]
        let preservation = Preservation(parameters)
        for (index, parameter) in parameters.enumerated() {
          parameter.assign(
            TestValues.signed.tensor(parameter.shape, seed: UInt64(10 + index)).storage)
          parameter.requiresGradient = true
        }
        return (parameters, { preservation.penalty(beta: 0.7) })
      })
    for (mode, input) in [
      (RoutingMode.soft, RouterInput.token), (.topk, .token), (.soft, .prefixMean),
      (.topk, .contentMean),
    ] {
      cases.append(
        GradientCheckCase(
          "whole routed model, \(mode), \(input.rawValue), RSL (routers, experts)",
          parameterShapes: [[3, 8]].repeated(8) + [[2, 8], [8, 2]].repeated(8 * 3),
          method: .randomProjections(count: 2)
        ) {
          let mixture = tinyMixture(mode: mode)
          mixture.settings.input = input
          for (_, tensor) in mixture.expertParameters() { tensor.requiresGradient = true }
          let parameters = mixture.routerParameters() + mixture.expertParameters()
          return (
            parameters.map(\.tensor),
            { routedLoss(mixture) }
          )
        })
    }
    let routedMamba = tinyMixture(mode: .soft, mamba: true)
    cases.append(
      GradientCheckCase(
        "whole routed mamba, soft, RSL (routers, experts at in/x/dt/out_proj)",
        parameterShapes: (routedMamba.routerParameters() + routedMamba.expertParameters()).map(
          \.tensor.shape),
        method: .randomProjections(count: 2)
      ) {
        let mixture = tinyMixture(mode: .soft, mamba: true)
        for (_, tensor) in mixture.expertParameters() { tensor.requiresGradient = true }
        let parameters = mixture.routerParameters() + mixture.expertParameters()
        return (
          parameters.map(\.tensor),
          { routedLoss(mixture) }
        )
      })
    cases.append(
      GradientCheckCase(
        "whole layer-gated model (MoLE), gates and balance loss (gates, experts)",
        parameterShapes: [[8], [8]] + [[2, 8], [8, 2]].repeated(8 * 3),
        method: .randomProjections(count: 2)
      ) {
        let mixture = tinyLayerGatedMixture()
        let experts = mixture.sites.flatMap { $0.site.experts.flatMap { $0.namedParameters() } }
        for (_, tensor) in experts { tensor.requiresGradient = true }
        return (
          (mixture.gateParameters() + experts).map(\.tensor),
          { gatedLoss(mixture) }
        )
      })
    let feedForward = tinyFeedForwardMixture()
    cases.append(
      GradientCheckCase(
        "whole model with MixLoRA, top-2 feed-forward experts and balance loss (all trained)",
        parameterShapes: feedForward.trainedParameters().map(\.tensor.shape),
        method: .randomProjections(count: 2)
      ) {
        let mixture = tinyFeedForwardMixture()
        return (
          mixture.trainedParameters().map(\.tensor),
          {
            for block in mixture.blocks { block.recording = true }
            defer { for block in mixture.blocks { block.recording = false } }
            let task = tinyLoss(mixture.model)
            let balance = mixture.blocks.flatMap { block in
              block.routings.map {
                FeedForwardMixture.balanceLoss($0, tokens: nil, experts: block.experts.count)
              }
            }
            return balance.reduce(task) { $0 + $1 * 0.3 }
          }
        )
      })
    return cases
  }

  /// The tiny Float64 Llama with MixLoRA: three experts per feed-forward block and a shared
  /// attention LoRA, rank 2, every B away from zero and the routers away from ties.
  public static func tinyFeedForwardMixture(seed: UInt64 = 3) -> FeedForwardMixture {
    let model = LlamaForCausalLM(tinyConfiguration(tied: false), seed: seed, dtype: .float64)
    var recipe = FeedForwardExpertsRecipe()
    (recipe.rank, recipe.alpha) = (2, 3)
    let mixture = FeedForwardMixture(model: model, experts: 3, recipe: recipe, seed: seed)
    for (index, (name, tensor)) in mixture.trainedParameters().enumerated()
    where name.contains("lora_B") || name.hasSuffix("gate.weight") {
      tensor.assign(TestValues.signed.tensor(tensor.shape, seed: UInt64(900 + index)).storage)
    }
    return mixture
  }

  /// Three rank-2 experts on `model`'s `targets`, with B away from zero so that A's
  /// gradient is not zero.
  static func tinyExperts(_ model: any CausalLanguageModel, targets: [String], seed: UInt64)
    -> [(name: String, adapters: [String: LoRA])]
  {
    (0..<3).map { index in
      let adapters = attachLoRA(
        to: model, targets: targets, rank: 2, alpha: 3, seed: seed + 10 + UInt64(index))
      for (offset, (_, lora)) in adapters.enumerated() {
        lora.b.weight.assign(
          TestValues.signed.tensor(lora.b.weight.shape, seed: UInt64(100 * index + offset)).storage
        )
      }
      return (
        name: "expert\(index)",
        adapters: Dictionary(uniqueKeysWithValues: adapters.map { ($0.path, $0.adapter) })
      )
    }
  }

  /// The tiny model's loss under MoLE's gates, plus the balance loss (weight 0.4) over
  /// every token.
  static func gatedLoss(_ mixture: LayerGatedMixture) -> Tensor {
    for gate in mixture.gates { gate.recording = true }
    defer { for gate in mixture.gates { gate.recording = false } }
    let task = tinyLoss(mixture.model)
    let weights = mixture.gates.flatMap(\.history)
    let rows = weights.map { Array(0..<$0.shape[0]) }
    return task + LayerGatedMixture.balanceLoss(weights, rows: rows) * 0.4
  }

  /// The tiny Float64 Llama with three experts of rank 2 (B away from zero) at q, k, v, o,
  /// mixed by MoLE's gates, with gates away from zero.
  public static func tinyLayerGatedMixture(seed: UInt64 = 3) -> LayerGatedMixture {
    let model = LlamaForCausalLM(tinyConfiguration(tied: false), seed: seed, dtype: .float64)
    let experts = tinyExperts(model, targets: attentionProjections, seed: seed)
    let mixture = LayerGatedMixture(
      model: model, experts: experts, targets: attentionProjections, temperature: 0.8, seed: seed)
    for (index, gate) in mixture.gates.enumerated() {
      gate.e.assign(TestValues.signed.tensor(gate.e.shape, seed: UInt64(700 + index)).storage)
    }
    return mixture
  }

  /// The tiny model's loss with the mixture routing as training does, plus RSL (α 0.3,
  /// λ 0.2) over every site's routing.
  static func routedLoss(_ mixture: Mixture) -> Tensor {
    let (task, routings) = mixture.routing.run(.training) { tinyLoss(mixture.model) }
    return task
      + routingLoss(
        Mixture.lossInputs(routings), tokens: nil,
        settings: RoutingLossSettings(alpha: 0.3, lambda: 0.2)
      ).loss
  }

  /// A site over a frozen `[4, 5]` Linear: router `t[1]`; experts a (rank 2, `t[2]`, `t[3]`),
  /// c (rank 3, `t[4]`, `t[5]`) and d (built from c's factors, another scale); b absent.
  /// Returned with the state it routes by: it routes as training does inside `state.run`.
  static func routedSite(_ t: [Tensor], mode: RoutingMode) -> (Linear, RoutingState) {
    let linear = Linear(weight: TestValues.signed.tensor([4, 5], seed: 9))
    linear.weight.requiresGradient = false
    let state = RoutingState(settings: RoutingSettings(mode: mode, k: 2, temperature: 0.8))
    let experts = [
      LoRA(a: Linear(weight: t[2]), b: Linear(weight: t[3]), scale: 1.5), nil,
      LoRA(a: Linear(weight: t[4]), b: Linear(weight: t[5]), scale: 0.5),
      LoRA(a: Linear(weight: t[4] * 0.5), b: Linear(weight: t[5]), scale: 2),
    ]
    linear.adapter = RoutedSite(
      experts: experts, names: ["a", "b", "c", "d"],
      router: Router(weight: t[1], present: experts.map { $0 != nil }), outputs: 4, state: state)
    return (linear, state)
  }

  /// A tiny Float64 model routed over three experts of rank 2 with B away from zero, and
  /// routers away from ties: the Llama at q, k, v, o, or the Mamba at its four projections.
  public static func tinyMixture(mode: RoutingMode, seed: UInt64 = 3, mamba: Bool = false)
    -> Mixture
  {
    let model: any CausalLanguageModel =
      mamba
      ? tinyMamba(seed: seed)
      : LlamaForCausalLM(tinyConfiguration(tied: false), seed: seed, dtype: .float64)
    let targets = mamba ? mambaProjections : attentionProjections
    let experts = tinyExperts(model, targets: targets, seed: seed)
    let mixture = Mixture(
      model: model, experts: experts, targets: targets,
      settings: RoutingSettings(mode: mode, k: 2), seed: seed)
    for (index, router) in mixture.routers.enumerated() {
      router.weight.assign(
        (TestValues.signed.tensor(router.weight.shape, seed: UInt64(500 + index)) * 0.5).storage)
    }
    return mixture
  }
}

extension Array {
  /// This array's elements, `count` times over.
  fileprivate func repeated(_ count: Int) -> [Element] { (0..<count).flatMap { _ in self } }
}
