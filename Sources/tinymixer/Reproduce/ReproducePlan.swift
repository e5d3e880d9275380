import LoRAMixer
import ToyTasks

/// The budgets of a reproduction: the full run (3 seeds, the default expert budget) or the
/// quick one (1 seed, every budget cut so it finishes in a few minutes).
struct ReproducePlan: Equatable {
  /// `full`, `quick` or `tiny`.
  var name: String
  /// Seeds of the main table; the other experiments use the first.
  var seeds: [UInt64]
  /// Steps of each single-task expert (stage 1), and its seed: the experts are trained
  /// once and shared by every seed's routers (training them per seed would add about 8
  /// minutes to the full run's 20).
  var expertSteps: Int
  var expertSeed: UInt64 = 0
  /// Steps of the shared LoRA, trained on the mixture of every task.
  var sharedSteps: Int
  /// Steps of each router training (stage 2), a fifth of `tinymixer mix`'s default, at its
  /// learning rate.
  var routerSteps: Int
  /// Router examples of the data-efficiency experiment.
  var routerExampleCounts: [Int]
  /// Test examples per task in every evaluation (the first ones of the test split).
  var testExamples: Int
  /// Test examples per task in the routing measurements (load, activation).
  var routingExamples: Int
  /// Examples per step of every training, if not the recipes' own.
  var batchSize: Int? = nil

  /// Three seeds at the default expert budget.
  static let full = ReproducePlan(
    name: "full", seeds: [0, 1, 2], expertSteps: ExpertRecipe.standard.training.steps,
    sharedSteps: ExpertRecipe.standard.training.steps, routerSteps: 200,
    routerExampleCounts: [250, 1000, 2000, 4000], testExamples: 400, routingExamples: 100)

  /// One seed, cut budgets.
  static let quick = ReproducePlan(
    name: "quick", seeds: [0], expertSteps: 80, sharedSteps: 80, routerSteps: 25,
    routerExampleCounts: [250, 4000], testExamples: 40, routingExamples: 20)

  /// A few steps of everything on two seeds, for the tests (with a tiny base model).
  static let tiny = ReproducePlan(
    name: "tiny", seeds: [0, 1], expertSteps: 2, sharedSteps: 2, routerSteps: 2,
    routerExampleCounts: [16, 32], testExamples: 8, routingExamples: 4, batchSize: 8)

  /// The plans by name.
  static let all = [full, quick, tiny]

  /// The expert recipe of this plan.
  var expertRecipe: ExpertRecipe {
    var recipe = ExpertRecipe.standard
    recipe.training.steps = expertSteps
    recipe.training.batchSize = batchSize ?? recipe.training.batchSize
    return recipe
  }

  /// One LoRA for every task with as many parameters as all the experts together: the
  /// rank of one expert times the number of experts, at the same α / rank.
  func sharedRecipe(experts: Int) -> ExpertRecipe {
    var recipe = expertRecipe
    recipe.rank *= experts
    recipe.alpha *= Double(experts)
    recipe.training.steps = sharedSteps
    return recipe
  }

  /// The router recipe of this plan, adjusted by `change`.
  func mixRecipe(_ change: (inout MixRecipe) -> Void = { _ in }) -> MixRecipe {
    var recipe = MixRecipe()
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

  /// The main table's mixtures by short name: a soft mixture with the plain balance loss,
  /// and LoRA-Mixer (hard-soft, RSL) with either entropy sign.
  func mainMixers() -> [(String, MixRecipe)] {
    [
      (
        "soft-balance",
        mixRecipe {
          $0.routing.mode = .soft
          $0.loss.kind = .aux
        }
      ),
      ("rsl-spread", mixRecipe()),
      ("rsl-sharpen", mixRecipe { $0.loss.entropy = .sharpen }),
    ]
  }

  /// The run that trains and measures `task`'s expert.
  func expertID(_ task: ToyTask) -> String { "expert/\(task.name)/seed\(expertSeed)" }

  /// The run of the shared LoRA with `seed`.
  func sharedID(_ seed: UInt64) -> String { "shared/seed\(seed)" }

  /// The run of the mixture `recipe` with `seed`.
  func mixerID(_ recipe: MixRecipe, seed: UInt64) -> String {
    let sites =
      SiteChoice(targets: recipe.targets)?.rawValue ?? recipe.targets.joined(separator: "+")
    let loss =
      recipe.loss.kind == .rsl ? "rsl-\(recipe.loss.entropy.rawValue)" : recipe.loss.kind.rawValue
    return
      "mix/\(sites)/\(recipe.routing.mode.rawValue)-k\(recipe.routing.k)/\(loss)/n\(recipe.routerExamples)/seed\(seed)"
  }
}
