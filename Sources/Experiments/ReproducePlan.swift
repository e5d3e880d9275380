import LoRAMixer
import ToyTasks
import Training

/// The budgets of a reproduction: the full run (3 seeds, the default expert budget) or the
/// quick one (1 seed, every budget cut so it finishes in a few minutes).
public struct ReproducePlan: Equatable, Sendable {
  /// `full`, `extended`, `quick` or `tiny`.
  public var name: String
  /// Seeds of the main table; the other experiments use the first.
  public var seeds: [UInt64]
  /// Steps of each single-task expert (stage 1), and its seed: the experts are trained
  /// once and shared by every seed's routers (training them per seed would add twelve
  /// expert runs; each took 46 to 103 s of its own time in the committed report).
  var expertSteps: Int
  var expertSeed: UInt64 = 0
  /// Steps of the shared LoRA, trained on the mixture of every task.
  var sharedSteps: Int
  /// Steps of each router training (stage 2): `tinymixer mix`'s default in the full plan.
  var routerSteps: Int
  /// Router examples of the data-efficiency experiment (none: no such experiment).
  var routerExampleCounts: [Int]
  /// Test examples per task in every evaluation (the first ones of the test split).
  var testExamples: Int
  /// Test examples per task in the routing measurements (load, activation).
  var routingExamples: Int
  /// Test examples per task under each fixed blend of the experts.
  var blendExamples: Int
  /// Examples per step of every training, if not the recipes' own.
  var batchSize: Int? = nil
  /// How many seeds train the shared LoRA as long as all the experts together: its runs
  /// are the plan's longest (six times an expert's steps on mixed batches).
  var sharedAllStepsSeedCount = 1
  /// Whether the ablations include the two no finding rests on (soft routing, attention
  /// sites only).
  var everyAblation = true
  /// The base model's architecture. On a Mamba the plan runs the main table alone (see
  /// `on(_:)`).
  public private(set) var architecture = Architecture.llama
  /// How many of the seeds run the data-efficiency experiment, and the routing-loss table
  /// (the paper's Table 8; 0: no table).
  var dataEfficiencySeedCount = 1
  var routingLossSeedCount = 0
  /// Whether the plan runs only the main table's methods (no blends, no ablations).
  var mainTableOnly = false
  /// Pretraining steps of the second bases the default mixer is carried to (the paper's
  /// Table 5): the one pretrained from another seed, and the extra steps of the one
  /// pretrained further. Nil: the base recipe's own steps, and a quarter of them.
  var transferPretrainSteps: Int? = nil
  var transferFurtherSteps: Int? = nil

  /// Three seeds at the default budgets: the main table with every baseline, the blending
  /// table, the routing figures, the transfer and the ablations the findings cite (over an
  /// hour on the 2-core AMD EPYC Zen 4, AVX-512, since MoLE and MixLoRA joined; lesson 08).
  public static let full = ReproducePlan(
    name: "full", seeds: [0, 1, 2], expertSteps: ExpertRecipe.standard.training.steps,
    sharedSteps: ExpertRecipe.standard.training.steps, routerSteps: MixRecipe().training.steps,
    routerExampleCounts: [], testExamples: 1000, routingExamples: 100, blendExamples: 100,
    everyAblation: false)

  /// The full plan and more: the router data efficiency (the paper's Table 9), every
  /// ablation, and the shared LoRA at the experts' total steps on every seed.
  static let extended: ReproducePlan = {
    var plan = full
    plan.name = "extended"
    plan.routerExampleCounts = [250, 1000, 2000, 4000, 10000]
    plan.dataEfficiencySeedCount = plan.seeds.count
    plan.routingLossSeedCount = plan.seeds.count
    plan.sharedAllStepsSeedCount = plan.seeds.count
    plan.everyAblation = true
    return plan
  }()

  /// One seed, cut budgets.
  static let quick = ReproducePlan(
    name: "quick", seeds: [0], expertSteps: 80, sharedSteps: 80, routerSteps: 25,
    routerExampleCounts: [250, 4000], testExamples: 40, routingExamples: 20, blendExamples: 20,
    routingLossSeedCount: 1, transferPretrainSteps: 100, transferFurtherSteps: 25)

  /// A few steps of everything on two seeds, for the tests (with a tiny base model).
  static let tiny = ReproducePlan(
    name: "tiny", seeds: [0, 1], expertSteps: 2, sharedSteps: 2, routerSteps: 2,
    routerExampleCounts: [16, 32], testExamples: 8, routingExamples: 4, blendExamples: 4,
    batchSize: 8, sharedAllStepsSeedCount: 2, dataEfficiencySeedCount: 2, routingLossSeedCount: 2,
    transferPretrainSteps: 2, transferFurtherSteps: 2)

  /// The plans by name.
  public static let all = [full, extended, quick, tiny]

  /// The plan called `name`, if there is one.
  public static func named(_ name: String) -> ReproducePlan? { all.first { $0.name == name } }

  /// Whether every run of the plan named `name` is a run of this one, so that this plan can
  /// continue that plan's folder: the extended plan contains the full one.
  public func contains(_ name: String) -> Bool {
    name == self.name || (self.name == Self.extended.name && name == Self.full.name)
  }

  /// This plan on a base of `architecture`. On a Mamba it keeps the main table's methods
  /// over its seeds and drops the experiments that study the Llama's routing (the blends,
  /// the ablations, the data efficiency, the long shared LoRA): they would double the run,
  /// and the question a Mamba answers is whether the method carries over, which the main
  /// table shows.
  public func on(_ architecture: Architecture) -> ReproducePlan {
    var plan = self
    plan.architecture = architecture
    if architecture == .mamba {
      plan.mainTableOnly = true
      plan.routerExampleCounts = []
      plan.sharedAllStepsSeedCount = 0
      plan.everyAblation = false
    }
    return plan
  }

  /// The seeds of the shared LoRA trained as long as all the experts together.
  var sharedAllStepsSeeds: [UInt64] { Array(seeds.prefix(sharedAllStepsSeedCount)) }

  /// The expert recipe of this plan.
  var expertRecipe: ExpertRecipe {
    var recipe = ExpertRecipe.standard
    recipe.training = training(recipe.training, steps: expertSteps)
    return recipe
  }

  /// One LoRA for every task with as many parameters as all the experts together: the
  /// rank of one expert times the number of experts, at the same α / rank. It trains
  /// `sharedSteps`, or, with `allExpertsSteps`, as many steps (and so examples) as all the
  /// experts together; its batches mix the tasks, so they run in length groups as the
  /// routers' do.
  func sharedRecipe(experts: Int, allExpertsSteps: Bool = false) -> ExpertRecipe {
    var recipe = expertRecipe
    recipe.rank *= experts
    recipe.alpha *= Double(experts)
    recipe.training.steps = allExpertsSteps ? expertSteps * experts : sharedSteps
    recipe.training.lengthGroups = MixRecipe().training.lengthGroups
    return recipe
  }

  /// The router recipe of this plan (tinymixer's default, or the paper's), adjusted by
  /// `change`.
  func mixRecipe(paper: Bool = false, _ change: (inout MixRecipe) -> Void = { _ in }) -> MixRecipe {
    var recipe = paper ? MixRecipe.paper : MixRecipe()
    recipe.training = training(recipe.training, steps: routerSteps)
    change(&recipe)
    return recipe
  }
}

// MARK: The names of a plan's runs

extension ReproducePlan {
  /// The command that runs this plan, recorded with every number.
  var command: String {
    "tinymixer reproduce" + (name == "full" ? "" : name == "quick" ? " --quick" : " --plan \(name)")
      + architectureFlag
  }

  /// `--architecture mamba` on a Mamba base, nothing on a Llama: for the recorded commands.
  var architectureArguments: [String] {
    architecture == .llama ? [] : ["--architecture", architecture.rawValue]
  }

  /// `architectureArguments` to append to a command: ` --architecture mamba`, or nothing.
  var architectureFlag: String { architectureArguments.map { " \($0)" }.joined() }

  /// `settings` with this plan's budget: `steps`, and the plan's batch if it sets one.
  func training(_ settings: TrainingSettings, steps: Int) -> TrainingSettings {
    var settings = settings
    settings.steps = steps
    settings.batchSize = batchSize ?? settings.batchSize
    return settings
  }

  /// The main table's mixtures by short name: LoRA-Mixer as the paper describes it (each
  /// token routed by its own input) and as tinymixer trains it by default.
  func mainMixers() -> [(String, MixRecipe)] {
    [("paper", mixRecipe(paper: true)), ("default", mixRecipe())]
  }

  /// The default with its balance term counting tokens, as the paper's formula does.
  var tokenCounting: (String, MixRecipe) {
    ("balance counted per token", mixRecipe { $0.loss.counting = .token })
  }

  /// The variants measured on the first seed, by name: the default recipe with one thing
  /// changed, and a classic soft mixture of experts with a plain balance loss.
  func ablations() -> [(String, MixRecipe)] {
    [
      (
        "soft mixture + balance loss, per-token router",
        mixRecipe(paper: true) {
          $0.routing.mode = .soft
          $0.loss.kind = .aux
        }
      ),
      tokenCounting,
      ("RSL sharpen", mixRecipe { $0.loss.entropy = .sharpen }),
      ("no routing loss", mixRecipe { $0.loss.kind = .none }),
    ]
      + (everyAblation
        ? [
          ("soft routing", mixRecipe { $0.routing.mode = .soft }),
          ("attention sites only", mixRecipe { $0.targets = SiteChoice.attention.targets }),
        ] : [])
  }

  /// The routing losses compared with everything else fixed (the paper's Table 8): the
  /// default router and data, only the loss changes.
  func routingLosses() -> [(String, MixRecipe)] {
    [
      ("none", mixRecipe { $0.loss.kind = .none }),
      ("balance only (Switch, Mixtral)", mixRecipe { $0.loss.kind = .aux }),
      (
        "balance + router z-loss 0.001 (ST-MoE)",
        mixRecipe {
          $0.loss.kind = .aux
          $0.loss.zLoss = 0.001
        }
      ),
      ("entropy only, spread", mixRecipe { $0.loss.kind = .entropy }),
      (
        "entropy only, sharpen",
        mixRecipe {
          $0.loss.kind = .entropy
          $0.loss.entropy = .sharpen
        }
      ),
      ("RSL, spread (tinymixer's default)", mixRecipe()),
      ("RSL, sharpen", mixRecipe { $0.loss.entropy = .sharpen }),
    ]
  }

  /// The data-efficiency experiment's mixtures: with each loss, at each router data size.
  func dataEfficiencyRecipe(_ count: Int, balanceOnly: Bool) -> MixRecipe {
    mixRecipe {
      $0.routerExamples = count
      if balanceOnly { $0.loss.kind = .aux }
    }
  }

  /// The fixed blends of the experts the reproduction measures, the routers bypassed.
  func blends(layers: Int) -> [Blend] {
    func own(_ share: Double) -> Blend.Weights {
      { own, experts, _, _ in
        (0..<experts).map { $0 == own ? share : (1 - share) / Double(experts - 1) }
      }
    }
    let uniform: Blend.Weights = { _, experts, _, _ in
      [Double](repeating: 1 / Double(experts), count: experts)
    }
    let noExpert: Blend.Weights = { _, experts, _, _ in [Double](repeating: 0, count: experts) }
    /// `weights` where `applies(layer, position)`, the own expert alone elsewhere.
    func only(_ weights: @escaping Blend.Weights, where applies: @escaping (Int, Int) -> Bool)
      -> Blend.Weights
    {
      { own, experts, layer, position in
        applies(layer, position) ? weights(own, experts, layer, position) : own1(own, experts)
      }
    }
    var blends = [
      Blend(name: "own expert alone (one-hot)", id: "own-1", weights: own(1)),
      Blend(name: "own 0.9, the others 0.1 between them", id: "own-0.9", weights: own(0.9)),
      Blend(name: "own 0.75, the others 0.25", id: "own-0.75", weights: own(0.75)),
      Blend(name: "own 0.5, the others 0.5", id: "own-0.5", weights: own(0.5)),
      Blend(
        name: "own expert alone at half strength", id: "half",
        weights: { own, experts, _, _ in own1(own, experts).map { $0 / 2 } }),
      Blend(name: "uniform (1/E each)", id: "uniform", weights: uniform),
      Blend(
        name: "uniform at `<bos>` only, own elsewhere", id: "uniform-bos",
        weights: only(uniform) { _, position in position == 0 }),
      Blend(
        name: "no expert at `<bos>`, own elsewhere", id: "none-bos",
        weights: only(noExpert) { _, position in position == 0 }),
    ]
    for layer in 0..<layers {
      blends.append(
        Blend(
          name: "uniform at layer \(layer) only, own elsewhere", id: "uniform-layer\(layer)",
          weights: only(uniform) { at, _ in at == layer }))
    }
    return blends
  }

  /// The run that trains and measures `task`'s expert.
  public func expertID(_ task: ToyTask) -> String { "expert/\(task.name)/seed\(expertSeed)" }

  /// The run of the shared LoRA with `seed`, trained `sharedSteps` or as long as all the
  /// experts together.
  public func sharedID(_ seed: UInt64, allExpertsSteps: Bool = false) -> String {
    allExpertsSteps ? "shared-all-steps/seed\(seed)" : "shared/seed\(seed)"
  }

  /// The run of LoRAHub with `seed` (every task's search).
  public func loraHubID(_ seed: UInt64) -> String { "lorahub/seed\(seed)" }

  /// The second bases of the transfer experiment, by id and name.
  static let transferBases = [
    ("another-seed", "a base pretrained the same way from another seed"),
    ("further", "the same base pretrained further"),
  ]

  /// The run of the transfer experiment on the base `base`, measuring `what` (`base`,
  /// `experts` or `mixer`).
  public func transferID(_ base: String, _ what: String) -> String {
    "transfer/\(base)/\(what)"
  }

  /// The run of MixLoRA with `seed`.
  public func feedForwardExpertsID(_ seed: UInt64) -> String { "mixlora/seed\(seed)" }

  /// MixLoRA's recipe in this plan: as many steps as the shared LoRA's, on the same batches.
  var feedForwardExpertsRecipe: FeedForwardExpertsRecipe {
    var recipe = FeedForwardExpertsRecipe()
    recipe.training = training(recipe.training, steps: sharedSteps)
    return recipe
  }

  /// Whether the plan runs MixLoRA: only a Llama has feed-forward blocks to route.
  var runsFeedForwardExperts: Bool { architecture == .llama }

  /// The run of MoLE's layer gates with `seed`.
  public func layerGatesID(_ seed: UInt64) -> String { "mole/seed\(seed)" }

  /// MoLE's recipe in this plan: the routers' steps, batch and mixed examples.
  var layerGateRecipe: LayerGateRecipe {
    var recipe = LayerGateRecipe()
    recipe.training = training(recipe.training, steps: routerSteps)
    return recipe
  }

  /// The run of the fixed blend `id`.
  func blendID(_ id: String) -> String { "blend/\(id)" }

  /// The run of the mixture `recipe` with `seed`: every setting that can differ is in it.
  public func mixerID(_ recipe: MixRecipe, seed: UInt64) -> String {
    let sites =
      SiteChoice(targets: recipe.targets)?.rawValue ?? recipe.targets.joined(separator: "+")
    let (routing, loss) = (recipe.routing, recipe.loss)
    let kindName =
      switch loss.kind {
      case .rsl: "rsl-\(loss.entropy.rawValue)-a\(loss.alpha)-l\(loss.lambda)"
      case .aux: "aux-a\(loss.alpha)"
      case .entropy: "entropy-\(loss.entropy.rawValue)-l\(loss.lambda)"
      case .none: "none"
      }
    let balanced = loss.kind.hasBalanceTerm
    let lossName =
      kindName + (balanced && loss.counting == .sequence ? "-per-sequence" : "")
      + (loss.zLoss > 0 ? "-z\(loss.zLoss)" : "")
    return
      "mix/\(sites)/\(routing.input.rawValue)/\(routing.mode.rawValue)-k\(routing.k)/\(lossName)/n\(recipe.routerExamples)/seed\(seed)"
  }
}

/// Fixed weights for the experts, the routers bypassed (`Mixture.blending`).
struct Blend {
  /// Each expert's weight, given the task's own expert, the number of experts, the decoder
  /// layer and the position in the sequence.
  typealias Weights = (_ own: Int, _ experts: Int, _ layer: Int, _ position: Int) -> [Double]
  var name: String
  var id: String
  var weights: Weights
}

/// Weight 1 on `own` of `experts`.
private func own1(_ own: Int, _ experts: Int) -> [Double] {
  (0..<experts).map { $0 == own ? 1 : 0 }
}
