import Experiments
import Foundation
import LoRAMixer
import NN
import SafeTensors
import ToyTasks
import Training

/// `tinymixer mix <task...>`: stage-1 experts (trained if missing), then routers (stage 2)
/// or routers and experts (joint), then each task's accuracy beside its expert and the base.
enum MixCommand: Command {
  static let name = "mix"
  static let summary = "train routers (or routers and experts) over one LoRA expert per task"
  static let synopsis =
    "tinymixer mix <task> <task...> [--architecture llama|mamba] [--experts DIR DIR...] [--joint] [--routing MODE] [--router-input token|prefix-mean|content-mean] [--k N] [--inference-k N] [--temperature X] [--loss rsl|aux|none] [--entropy spread|sharpen] [--alpha-balance X] [--balance-per token|sequence] [--lambda X] [--beta X] [--router-examples N] [--sites attention|mlp|all] [--steps N] [--lr X] [--batch N] [--seed N] [--threads N] [--out DIR] [--checkpoint-every N] [--resume]"
  static var options: [Option] {
    let recipe = MixRecipe()
    return [
      Option(
        name: "joint", valueName: nil,
        help: "train the experts with the routers (hardsoft, RSL, preservation)"),
      Option(
        name: "routing", valueName: "MODE",
        help: "soft, topk or hardsoft (default: \(recipe.routing.mode))"),
      Option(
        name: "router-input", valueName: "FROM",
        help:
          "what routes a token: token (its own input, as the paper), prefix-mean (the mean of its site's router logits over the sequence up to it) or content-mean (the same without <bos>) (default: \(recipe.routing.input.rawValue))"
      ),
      Option(
        name: "k", valueName: "N",
        help: "experts per token while training (default: \(recipe.routing.k))"),
      Option(
        name: "inference-k", valueName: "N", help: "experts per token at inference (default: --k)"),
      Option(
        name: "temperature", valueName: "X",
        help:
          "the routers' softmax temperature τ, p = softmax(z / τ) (default: \(recipe.routing.temperature))"
      ),
      Option(
        name: "loss", valueName: "KIND",
        help: "rsl, aux (balance only), entropy (RSL's entropy term only) or none (default: rsl)"),
      Option(
        name: "z-loss", valueName: "X",
        help: "weight of ST-MoE's router z-loss, added to any --loss (default: 0, none)"),
      Option(
        name: "entropy", valueName: "SIGN",
        help: "RSL's entropy term: spread (as printed) or sharpen (as described) (default: spread)"),
      Option(
        name: "alpha-balance", valueName: "X",
        help: "weight of the balance term (default: \(recipe.loss.alpha))"),
      Option(
        name: "balance-per", valueName: "UNIT",
        help:
          "what the balance term counts as one unit of load: token (as the paper) or sequence (default: \(recipe.loss.counting.rawValue))"
      ),
      Option(
        name: "lambda", valueName: "X",
        help: "weight of the entropy term (default: \(recipe.loss.lambda))"),
      Option(
        name: "beta", valueName: "X",
        help: "weight of expert preservation, with --joint (default: \(recipe.beta))"),
      Option(
        name: "router-examples", valueName: "N",
        help:
          "mixed training examples, drawn evenly from the tasks (default: \(recipe.routerExamples))"
      ),
      Option(
        name: "sites", valueName: "WHERE",
        help: "attention (q, k, v, o), mlp (gate, up, down) or all (default: all)"),
    ] + Option.training(recipe.training) + [
      .seed, .threads, .overwrite,
      Option(
        name: "expert-steps", valueName: "N",
        help:
          "steps of each stage-1 expert trained here (default: \(ExpertRecipe.standard.training.steps))"
      ),
      Option(
        name: "experts", valueName: nil,
        help:
          "plug and play: the positionals that are folders are PEFT adapters to route over (frozen), the others the tasks that train and test the routers"
      ),
      Option(
        name: "runs", valueName: "DIR",
        help: "where stage-1 experts are kept, as <task>/adapter (default: runs)"),
      Option(
        name: "out", valueName: "DIR",
        help: "where to save the mixer (default: runs/mix/<task>+<task>...)"),
      Project.baseOption, Project.architectureOption,
    ] + Option.checkpointing("the routers' training state") + [Locations.datasetsOption]
  }

  static func run(_ arguments: Arguments) throws -> Int32 {
    let (tasks, folders) = try tasksAndFolders(arguments)
    let plugAndPlay = arguments.has("experts")
    let sites = try arguments.choice("sites", default: SiteChoice.all)
    var recipe = try mixRecipe(arguments, experts: plugAndPlay ? folders.count : tasks.count)
    recipe.targets = sites.targets
    let seed = UInt64(try arguments.integer("seed", default: 0))
    var expertRecipe = ExpertRecipe.standard
    expertRecipe.targets = sites.targets
    expertRecipe.training.steps = try arguments.integer(
      "expert-steps", default: expertRecipe.training.steps, in: 1...1_000_000)
    let runs = URL(fileURLWithPath: arguments.string("runs") ?? "runs")
    let out = URL(
      fileURLWithPath: arguments.string("out")
        ?? runs.appendingPathComponent("mix/\(tasks.map(\.name).joined(separator: "+"))").path)
    try arguments.refuseToOverwrite(out, holding: MixerFiles.configName, what: "a mixer")
    let checkpoint = try arguments.checkpointPolicy(in: out)
    let started = Date()
    let project = try Project(arguments)
    let (model, baseFolder, _) = try project.loadBase(arguments)
    do { _ = try model.projections(named: sites.targets) } catch {
      throw ToolError.usage("--sites: \(error)")
    }
    let baseCount = model.parameterCount  // before any expert or router is attached

    // Stage 1: one expert per task, trained on that task alone; or, plug and play, the
    // adapters in the folders given.
    let experts =
      plugAndPlay
      ? try readExperts(folders, model: model)
      : try trainExperts(
        tasks, recipe: expertRecipe, sites: sites, seed: seed, runs: runs, project: project,
        model: model, baseFolder: baseFolder)

    // Stage 2 (or joint): the routers over the experts, on a mixed set without task labels.
    let mixture = project.mixture(
      recipe, over: experts.map { ($0.name, $0.adapters) }, model: model, seed: seed)
    let mixed = project.mixedExamples(tasks, recipe: recipe, seed: seed)
    let routerCount = mixture.routerParameters().reduce(0) { $0 + $1.tensor.count }
    let expertCount = mixture.expertParameters().reduce(0) { $0 + $1.tensor.count }
    print(
      "\(recipe.joint ? "joint" : "stage 2"): \(mixture.sites.count) routed sites × \(experts.count) experts, \(describe(recipe)), \(grouped(mixed.count)) mixed examples, \(recipe.training.steps) steps"
    )
    // Each task's expert alone (oracle routing) and the base, measured before the routers
    // train: with --joint the experts change, and the mixture is compared with stage 1.
    let before = project.expertAndBaseAccuracy(tasks, mixture: mixture)
    let trainingStarted = Date()
    try trainRouters(
      mixture, on: mixed, recipe: recipe, seed: seed, checkpoint: checkpoint, project: project)
    let trainingSeconds = Date().timeIntervalSince(trainingStarted)
    let after = project.testAccuracy(of: mixture, on: tasks)
    printComparison(
      tasks, mixture: mixture, before: before, after: after, recipe: recipe, project: project)

    let trained = recipe.joint ? routerCount + expertCount : routerCount
    print(
      "\nparameters: base \(grouped(baseCount)) (frozen), experts \(grouped(expertCount)) (\(recipe.joint ? "trained" : "frozen")), routers \(grouped(routerCount)); trained in this run \(grouped(trained)), \(percent(Double(trained) / Double(baseCount + routerCount + expertCount))) of all"
    )
    try MixerFiles.save(
      mixture, experts: experts.map(\.file), baseModel: baseFolder.path, loss: recipe.loss,
      to: out)
    try? FileManager.default.removeItem(at: checkpoint.file)
    print(
      String(
        format: "wall time: %.1f s (routers %.1f s)", Date().timeIntervalSince(started),
        trainingSeconds))
    print("mixer saved to \(out.path) (mixer_config.json, router.safetensors, experts/)")
    print("see its routing with: tinymixer route \(out.path)")
    return 0
  }

  /// The tasks named on the command line, and (plug and play) the adapter folders.
  static func tasksAndFolders(_ arguments: Arguments) throws -> ([ToyTask], [String]) {
    let plugAndPlay = arguments.has("experts")
    let folders = plugAndPlay ? arguments.positionals.filter { ToyTask.named($0) == nil } : []
    let taskNames = arguments.positionals.filter { !folders.contains($0) }
    guard taskNames.count >= (plugAndPlay ? 1 : 2), !plugAndPlay || folders.count >= 2 else {
      throw ToolError.usage(
        plugAndPlay
          ? "--experts needs two or more adapter folders and at least one task to train the routers on"
          : "two or more tasks to mix (for example toy-sst2 toy-cola)")
    }
    let tasks = try taskNames.map(Project.task)
    guard Set(tasks.map(\.name)).count == tasks.count else {
      throw ToolError.usage("each task may be named once")
    }
    if plugAndPlay && arguments.has("joint") {
      throw ToolError.usage("--experts routes over frozen adapters; it cannot be --joint")
    }
    return (tasks, folders)
  }

  /// Plug and play: the PEFT adapters in `folders`, each named after its folder.
  static func readExperts(_ folders: [String], model: any CausalLanguageModel) throws -> [Expert] {
    var experts: [Expert] = []
    for path in folders {
      let folder = URL(fileURLWithPath: path)
      let file: LoRAAdapterFile
      do { file = try LoRAAdapterFile.load(from: folder) } catch {
        throw ToolError.failure("\(error)")
      }
      let name = expertName(folder)
      guard !experts.contains(where: { $0.name == name }) else {
        throw ToolError.usage("two experts would be named '\(name)'; rename a folder")
      }
      let ranks = Set(file.sites.values.map(\.rank)).sorted().map(String.init)
      print(
        "\(name): \(file.sites.count) adapted layers, rank \(ranks.joined(separator: "/")), from \(folder.path)"
      )
      for omission in try file.omissions(on: model) { print("  note: \(omission)") }
      experts.append((name, file, try attachedAdapters(file, model)))
    }
    return experts
  }

  /// Stage 1: each task's expert, read from `runs` if it was trained there on this base,
  /// else trained now and saved there.
  static func trainExperts(
    _ tasks: [ToyTask], recipe: ExpertRecipe, sites: SiteChoice, seed: UInt64, runs: URL,
    project: Project, model: any CausalLanguageModel, baseFolder: URL
  ) throws -> [Expert] {
    try tasks.map { task in
      let file = try project.expert(
        task, recipe: recipe, model: model, baseFolder: baseFolder,
        folder: Locations.expertFolder(task, sites: sites.rawValue, seed: seed, runs: runs),
        seed: seed)
      return (task.name, file, try attachedAdapters(file, model))
    }
  }

  /// Trains the routers (and experts, when joint) with progress, then prints the routing
  /// logged at a few steps and warns of any site whose routing collapsed.
  static func trainRouters(
    _ mixture: Mixture, on mixed: [Example], recipe: MixRecipe, seed: UInt64,
    checkpoint: CheckpointPolicy, project: Project
  ) throws {
    var progress = ProgressDisplay(recipe.joint ? "joint" : "routers")
    var lastTally: RoutingTally? = nil
    var logged: [String] = []
    let logEvery = max(1, recipe.training.steps / 4)
    Interruption.install()
    try project.train(mixture, on: mixed, recipe: recipe, seed: seed, checkpoint: checkpoint) {
      report in
      progress.show(report.step)
      let (step, steps) = (report.step.step, report.step.steps)
      guard step % logEvery == 0 || step == 1 || step == steps else { return }
      let tally = report.tally
      if step == steps { lastTally = tally }
      if step % logEvery == 0 || step == 1 {
        logged.append(
          String(format: "  step %4d  task %.4f  ", step, report.task)
            + tally.summary(expertNames: mixture.expertNames))
      }
    }
    print("routing while training (per batch, averaged over sites):")
    for line in logged { print(line) }
    for site in lastTally?.collapsedSites ?? [] {
      print(
        "warning: routing collapsed at \(site.site): \(mixture.expertNames[site.firstChoiceShare.firstIndex(of: site.firstChoiceShare.max()!)!]) is the first choice of \(percent(site.firstChoiceShare.max()!)) of tokens"
      )
    }
  }

  /// Each task's test accuracy with the mixture beside its expert and the base, and which
  /// expert each task's tokens choose first.
  static func printComparison(
    _ tasks: [ToyTask], mixture: Mixture, before: [String: (expert: Double?, base: Double)],
    after: [String: Double], recipe: MixRecipe, project: Project
  ) {
    var table = Table(
      ["task", "base", "stage-1 expert (oracle)", "mixture", "mixture − expert"],
      rightAligned: [1, 2, 3, 4])
    for task in tasks {
      let mixtureAccuracy = after[task.name]!
      let (expertAccuracy, baseAccuracy) = before[task.name]!
      table.add([
        task.name, percent(baseAccuracy), expertAccuracy.map(percent) ?? "no expert named so",
        percent(mixtureAccuracy),
        expertAccuracy.map { String(format: "%+.1f", 100 * (mixtureAccuracy - $0)) } ?? "",
      ])
    }
    print(
      "\ntest accuracy (\(project.examples(tasks[0], .test).count) examples per task; inference routes top-\(recipe.routing.inferenceK)):"
    )
    print(table.rendered)

    print("\nwhich expert each task's tokens chose first (inference, mean over sites):")
    var routingTable = Table(
      ["task"] + mixture.expertNames, rightAligned: Set(1...mixture.expertNames.count))
    for task in tasks {
      let tally = mixture.tally(
        Array(project.examples(task, .test).prefix(200)), tokenizer: project.tokenizer)
      routingTable.add([task.name] + tally.firstChoiceShare.map(percent))
    }
    print(routingTable.rendered)
  }

  /// The recipe the options describe.
  static func mixRecipe(_ arguments: Arguments, experts: Int) throws -> MixRecipe {
    var recipe = MixRecipe()
    recipe.joint = arguments.has("joint")
    recipe.routing.mode = try arguments.choice("routing", default: recipe.routing.mode)
    recipe.routing.input = try arguments.choice("router-input", default: recipe.routing.input)
    recipe.routing.k = try arguments.integer(
      "k", default: min(recipe.routing.k, experts), in: 1...experts)
    recipe.routing.inferenceK = try arguments.integer(
      "inference-k", default: recipe.routing.k, in: 1...experts)
    recipe.routing.temperature = try arguments.number(
      "temperature", default: recipe.routing.temperature, in: 1e-3...1e3)
    recipe.loss.kind = try arguments.choice("loss", default: recipe.loss.kind)
    recipe.loss.entropy = try arguments.choice("entropy", default: recipe.loss.entropy)
    recipe.loss.alpha = try arguments.number(
      "alpha-balance", default: recipe.loss.alpha, in: 0...100)
    recipe.loss.counting = try arguments.choice("balance-per", default: recipe.loss.counting)
    recipe.loss.lambda = try arguments.number("lambda", default: recipe.loss.lambda, in: 0...100)
    recipe.loss.zLoss = try arguments.number("z-loss", default: recipe.loss.zLoss, in: 0...100)
    recipe.beta = try arguments.number("beta", default: recipe.beta, in: 0...1e6)
    recipe.routerExamples = try arguments.integer(
      "router-examples", default: recipe.routerExamples, in: 1...1_000_000)
    recipe.training = try arguments.trainingSettings(recipe.training)
    return recipe
  }

  /// `hardsoft top-2, RSL (spread, α 0.01, λ 0.01)`.
  static func describe(_ recipe: MixRecipe) -> String {
    let loss =
      switch recipe.loss.kind {
      case .rsl:
        "RSL (\(recipe.loss.entropy), α \(recipe.loss.alpha) per \(recipe.loss.counting), λ \(recipe.loss.lambda))"
      case .aux: "balance loss (α \(recipe.loss.alpha) per \(recipe.loss.counting))"
      case .entropy: "entropy term only (\(recipe.loss.entropy), λ \(recipe.loss.lambda))"
      case .none: "no routing loss"
      }
    let zLoss = recipe.loss.zLoss > 0 ? ", z-loss \(recipe.loss.zLoss)" : ""
    let preservation = recipe.joint ? ", preservation β \(recipe.beta)" : ""
    return
      "\(recipe.routing.mode) top-\(recipe.routing.k) routed by \(recipe.routing.input.rawValue), \(loss)\(zLoss)\(preservation)"
  }
}
