import LoRAMixer
import ToyTasks

/// The budgets of a reproduction: the full run (3 seeds, the default expert budget) or the
/// quick one (1 seed, every budget cut so it finishes in a few minutes).
public struct ReproducePlan: Equatable, Sendable {
  /// `full`, `quick` or `tiny`.
  public var name: String
  /// Seeds of the main table; the other experiments use the first.
  public var seeds: [UInt64]
  /// Steps of each single-task expert (stage 1), and its seed: the experts are trained
  /// once and shared by every seed's routers (training them per seed would add about 4
  /// minutes: an expert takes 35 to 40 s).
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

  /// Three seeds at the default budgets: the main table, the blending table, the routing
  /// figures and the ablations the findings cite (42 min 31 s on the 2-core AMD EPYC Zen 4,
  /// AVX-512; lesson 08).
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
    plan.routerExampleCounts = [250, 2000, 4000]
    plan.sharedAllStepsSeedCount = plan.seeds.count
    plan.everyAblation = true
    return plan
  }()

  /// One seed, cut budgets.
  static let quick = ReproducePlan(
    name: "quick", seeds: [0], expertSteps: 80, sharedSteps: 80, routerSteps: 25,
    routerExampleCounts: [250, 4000], testExamples: 40, routingExamples: 20, blendExamples: 20)

  /// A few steps of everything on two seeds, for the tests (with a tiny base model).
  static let tiny = ReproducePlan(
    name: "tiny", seeds: [0, 1], expertSteps: 2, sharedSteps: 2, routerSteps: 2,
    routerExampleCounts: [16, 32], testExamples: 8, routingExamples: 4, blendExamples: 4,
    batchSize: 8, sharedAllStepsSeedCount: 2)

  /// The plans by name.
  public static let all = [full, extended, quick, tiny]

  /// The seeds of the shared LoRA trained as long as all the experts together.
  var sharedAllStepsSeeds: [UInt64] { Array(seeds.prefix(sharedAllStepsSeedCount)) }

  /// The expert recipe of this plan.
  var expertRecipe: ExpertRecipe {
    var recipe = ExpertRecipe.standard
    recipe.training.steps = expertSteps
    recipe.training.batchSize = batchSize ?? recipe.training.batchSize
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
    recipe.training.steps = routerSteps
    recipe.training.batchSize = batchSize ?? recipe.training.batchSize
    change(&recipe)
    return recipe
  }
}

// MARK: The names of a plan's runs

extension ReproducePlan {
  /// The command that runs this plan, recorded with every number.
  var command: String {
    "tinymixer reproduce" + (self == .full ? "" : self == .quick ? " --quick" : " --plan \(name)")
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
      case .none: "none"
      }
    let lossName =
      kindName + (loss.kind != .none && loss.counting == .sequence ? "-per-sequence" : "")
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
