import Autodiff
import Foundation
import LoRAMixer
import NN
import ToyTasks
import Training

/// Runs the experiments of Tutorials/the-paper.md §7 on one base model, keeping every
/// result in `results.json` and every expert as a PEFT adapter in the report folder, so
/// that a rerun skips what is done.
public final class Reproduction {
  let project: Project
  let model: any CausalLanguageModel
  let baseFolder: URL
  let plan: ReproducePlan
  /// The report folder as the user named it (kept so for the commands recorded in the
  /// results), and as a URL.
  let folderName: String
  var folder: URL { URL(fileURLWithPath: folderName) }
  /// Every run finished so far.
  public var results: Results
  let tasks = ToyTask.all
  /// The experts once read or trained, by task name.
  private var experts: [String: LoRAAdapterFile] = [:]
  /// The job running now: the run that `reproduce --only` names to make its runs again.
  private var runningJob: String? = nil

  /// A unit of work: its id (the run it makes), its rough cost in seconds, whether it
  /// trains an expert or needs every expert trained first, and the work.
  public struct Job {
    var id: String
    var label: String
    var cost: Double
    var isExpert = false
    var needsExperts = false
    /// The runs that must be finished before this one starts.
    var after: [String] = []
    var run: () throws -> Void
  }

  /// A reproduction of `plan` on `model` (read from `baseFolder`), into the folder
  /// `folderName`, continuing `results`.
  public init(
    project: Project, model: any CausalLanguageModel, baseFolder: URL, plan: ReproducePlan,
    folderName: String, results: Results
  ) {
    (self.project, self.model, self.baseFolder) = (project, model, baseFolder)
    (self.plan, self.folderName, self.results) = (plan, folderName, results)
  }

  // MARK: The experiments

  /// Every run of the plan, in order: what the main table needs first (over every seed),
  /// then the experiments on the first seed.
  func jobs() -> [Job] {
    let first = plan.seeds[0]
    var jobs: [Job] = [
      Job(id: "base", label: "the frozen base", cost: 10) { try self.measureBase() },
      Job(id: "bag-of-words", label: "the bag-of-words baseline", cost: 2) {
        try self.measureBagOfWords()
      },
    ]
    for task in tasks { jobs.append(expertJob(task)) }
    if !plan.mainTableOnly {
      jobs.append(
        Job(
          id: plan.blendID(plan.blends(layers: model.layerCount).last!.id),
          label: "the experts under fixed blends", cost: 40, needsExperts: true
        ) {
          try self.measureBlends()
        })
    }
    // What does not depend on tinymixer's default recipe first, then the default over
    // every seed.
    jobs += perSeed(
      plan.seeds, "shared LoRA", cost: Double(plan.sharedSteps) * 0.12, id: { plan.sharedID($0) }
    ) { try self.trainShared(seed: $0) }
    // The shared LoRA again, as long as all the experts together: the fair budget.
    jobs += perSeed(
      plan.sharedAllStepsSeeds, "shared LoRA with the experts' total steps",
      cost: Double(plan.expertSteps * tasks.count) * 0.12,
      id: { plan.sharedID($0, allExpertsSteps: true) }
    ) { try self.trainShared(seed: $0, allExpertsSteps: true) }
    jobs += perSeed(
      plan.seeds, "LoRAHub", cost: 20, needsExperts: true, id: plan.loraHubID
    ) { try self.composeLoRAHub(seed: $0) }
    jobs += perSeed(
      plan.runsFeedForwardExperts ? plan.seeds : [], "MixLoRA",
      cost: Double(plan.sharedSteps) * 0.2, id: plan.feedForwardExpertsID
    ) { try self.trainFeedForwardExperts(seed: $0) }
    jobs += perSeed(
      plan.seeds, "MoLE", cost: Double(plan.routerSteps) * 0.2 + 8, needsExperts: true,
      id: plan.layerGatesID
    ) { try self.trainLayerGates(seed: $0) }
    for (name, recipe) in plan.mainMixers() {
      for seed in plan.seeds {
        jobs.append(
          mixerJob(
            "LoRA-Mixer, \(name)", recipe: recipe, seed: seed,
            topK: seed == first && name == "default"))
      }
    }
    jobs += transferJobs()
    for (name, recipe) in plan.mainTableOnly ? [] : plan.ablations() {
      jobs.append(mixerJob(name, recipe: recipe, seed: first))
    }
    for seed in plan.seeds.prefix(plan.dataEfficiencySeedCount) {
      for count in plan.routerExampleCounts {
        for balanceOnly in [false, true] {
          jobs.append(
            mixerJob(
              "\(balanceOnly ? "balance loss" : "RSL"), \(count) router examples",
              recipe: plan.dataEfficiencyRecipe(count, balanceOnly: balanceOnly), seed: seed))
        }
      }
    }
    for seed in plan.mainTableOnly ? [] : plan.seeds.prefix(plan.routingLossSeedCount) {
      for (name, recipe) in plan.routingLosses() {
        jobs.append(mixerJob("routing loss: \(name)", recipe: recipe, seed: seed))
      }
    }
    return jobs
  }

  /// One job per seed of `seeds`: the run `id(seed)`, labelled `label, seed N`.
  func perSeed(
    _ seeds: [UInt64], _ label: String, cost: Double, needsExperts: Bool = false,
    id: (UInt64) -> String, run: @escaping (UInt64) throws -> Void
  ) -> [Job] {
    seeds.map { seed in
      Job(id: id(seed), label: "\(label), seed \(seed)", cost: cost, needsExperts: needsExperts) {
        try run(seed)
      }
    }
  }

  /// The jobs whose runs are not in the results yet, each once, in order.
  public func pendingJobs() -> [Job] {
    let all = jobs()
    let pending = unfinished(all)
    let count = Set(all.map(\.id)).count
    print(
      "\(count - pending.count) of \(count) runs already in \(folder.path); \(pending.count) to run"
    )
    return pending
  }

  /// The jobs whose runs are not in the results yet, each once, in order.
  public func unfinishedJobs() -> [Job] { unfinished(jobs()) }

  /// Those of `jobs` whose runs are not in the results yet, each once, in order.
  private func unfinished(_ jobs: [Job]) -> [Job] {
    var seen = Set<String>()
    return jobs.filter { seen.insert($0.id).inserted && results.runs[$0.id] == nil }
  }

  /// The unfinished jobs that the run `id` needs, in order: the experts if it reads them,
  /// the runs it waits for (and theirs), and its own (`reproduce --only`).
  public func jobs(toMake id: String) throws -> [Job] {
    let all = jobs()
    guard let target = all.first(where: { $0.id == id }) else {
      throw ToolError.usage(
        "--only: the plan '\(plan.name)' has no run '\(id)'; its runs: "
          + Array(Set(all.map(\.id))).sorted().joined(separator: ", "))
    }
    var needed: Set<String> = []
    func need(_ job: Job) {
      guard needed.insert(job.id).inserted else { return }
      if job.needsExperts { for expert in all where expert.isExpert { need(expert) } }
      for earlier in job.after {
        if let found = all.first(where: { $0.id == earlier }) { need(found) }
      }
    }
    need(target)
    return unfinished(all).filter { needed.contains($0.id) }
  }

  /// Runs the job `id` alone and returns the runs it made (a worker's part of `Workers`).
  public func runOnly(_ id: String) throws -> [String: RunRecord] {
    guard let job = jobs().first(where: { $0.id == id }) else {
      throw ToolError.usage("--run-job: the plan '\(plan.name)' has no run '\(id)'")
    }
    let before = Set(results.runs.keys)
    runningJob = job.id
    defer { runningJob = nil }
    try job.run()
    return results.runs.filter { !before.contains($0.key) }
  }

  /// Runs the `pending` jobs in this process, with one progress line per job and the time
  /// left.
  public func run(_ pending: [Job], stopRequested: () -> Bool) throws {
    try results.save(to: folder)  // as this code writes it, even with nothing to run
    let total = pending.reduce(0) { $0 + $1.cost }
    var done = 0.0
    let started = Date()
    for (index, job) in pending.enumerated() {
      let elapsed = Date().timeIntervalSince(started)
      let left = done > 0 ? elapsed / done * (total - done) : .nan
      print(
        "[\(index + 1)/\(pending.count)] \(job.label)  (elapsed \(formatDuration(elapsed)), about \(formatDuration(left)) left)"
      )
      runningJob = job.id
      defer { runningJob = nil }
      try job.run()
      try results.save(to: folder)
      done += job.cost
      if stopRequested() { return }
    }
  }

  // MARK: Runs

  /// A record of the run `id`, to fill in and `keep`, made alone by the standalone command
  /// `equivalent`.
  func record(_ id: String, seed: UInt64, equivalent: String) -> RunRecord {
    RunRecord(id: id, command: plan.command, equivalent: equivalent, seed: Int(seed), seconds: 0)
  }

  /// A record of the run `id`, which no other command makes: its equivalent is this plan's
  /// `reproduce --only` with the job that makes it, and what the run did after a `#`.
  func record(_ id: String, seed: UInt64, doing what: String) -> RunRecord {
    record(id, seed: seed, equivalent: "\(plan.command) --only \(runningJob ?? id)  # \(what)")
  }

  /// Stores `run`, timed from `started`, and removes every adapter from the model.
  func keep(_ run: RunRecord, started: Date) {
    var run = run
    run.seconds = Date().timeIntervalSince(started)
    results.runs[run.id] = run
    model.detachAdapters()
  }

  /// The test examples of `task` every evaluation uses.
  func test(_ task: ToyTask) -> [Example] {
    Array(project.examples(task, .test).prefix(plan.testExamples))
  }

  func measureBase() throws {
    let started = Date()
    model.detachAdapters()
    var run = record("base", seed: 0, equivalent: "tinymixer eval <task>")
    for task in tasks {
      run.accuracy[task.name] = model.accuracy(test(task), tokenizer: project.tokenizer)
    }
    keep(run, started: started)
  }

  /// Naive Bayes over each task's prompt words, fitted on its training split: what the
  /// words alone tell, with no model and no word order.
  func measureBagOfWords() throws {
    let started = Date()
    var run = record("bag-of-words", seed: 0, equivalent: "tinymixer datasets --baselines")
    for task in tasks {
      run.accuracy[task.name] = BagOfWordsBaseline(training: project.examples(task, .train))
        .accuracy(test(task))
    }
    keep(run, started: started)
  }

  /// LoRAHub: for each task, the experts composed by their matrices with the weights its
  /// search finds on a few of the task's training examples (drawn by `seed`), then tested
  /// on the task.
  func composeLoRAHub(seed: UInt64) throws {
    let started = Date()
    let experts = try attachedExperts().experts.map(\.adapters)
    model.detachAdapters()
    let recipe = LoRAHubRecipe()
    var run = record(
      plan.loraHubID(seed), seed: seed,
      doing:
        "LoRAHub over the \(tasks.count) experts, \(recipe.examples) training examples per task, \(recipe.budget) evaluations"
    )
    var composition: [String: [Double]] = [:]
    for task in tasks {
      let few = MixRecipe.mixedExamples(
        [project.examples(task, .train)], count: recipe.examples, seed: seed)
      let found = recipe.search(
        model, experts: experts, examples: few, tokenizer: project.tokenizer, seed: seed)
      run.accuracy[task.name] = model.accuracy(test(task), tokenizer: project.tokenizer)
      composition[task.name] = found.weights
      print(
        "    \(task.name): weights \(found.weights.map { String(format: "%.2f", $0) }.joined(separator: " ")), accuracy \(percent(run.accuracy[task.name]!))"
      )
      model.detachAdapters()
    }
    run.composition = composition
    run.trainedParameters = tasks.count * experts.count
    keep(run, started: started)
  }

  /// MixLoRA: routed LoRA experts in every feed-forward block and a shared attention LoRA,
  /// trained together from scratch on every task's training examples (drawn by `seed`),
  /// then tested on every task.
  func trainFeedForwardExperts(seed: UInt64) throws {
    let started = Date()
    guard let llama = model as? LlamaForCausalLM else {
      throw ToolError.failure("MixLoRA needs a Llama base: a Mamba has no feed-forward blocks")
    }
    let recipe = plan.feedForwardExpertsRecipe
    let mixture = FeedForwardMixture(
      model: llama, experts: recipe.experts ?? tasks.count, recipe: recipe, seed: seed)
    var progress = ProgressDisplay("  mixlora")
    let losses = try mixture.train(
      on: tasks.flatMap { project.examples($0, .train) }, tokenizer: project.tokenizer, seed: seed
    ) { progress.show($0) }
    keepMeasured(
      record(
        plan.feedForwardExpertsID(seed), seed: seed,
        doing:
          "MixLoRA, \(recipe.experts ?? tasks.count) rank-\(recipe.rank) experts in every feed-forward block (top-\(recipe.k)) and a shared rank-\(recipe.rank) attention LoRA, trained \(recipe.training.steps) steps on every task's training split, balance weight \(recipe.balanceWeight)"
      ), losses: losses, parameters: mixture.trainedParameters(), started: started)
  }

  /// Keeps `run` (started at `started`) with its training losses and the count of its
  /// trained `parameters`, measured on every task, and prints its mean.
  func keepMeasured(
    _ run: RunRecord, losses: [Double], parameters: [(name: String, tensor: Tensor)],
    started: Date
  ) {
    var run = run
    for task in tasks {
      run.accuracy[task.name] = model.accuracy(test(task), tokenizer: project.tokenizer)
    }
    run.losses = thinned(losses)
    run.trainedParameters = parameters.reduce(0) { $0 + $1.tensor.count }
    keep(run, started: started)
    print("    mean test accuracy \(percent(run.meanAccuracy(tasks.map(\.name))))")
  }

  /// MoLE: the experts mixed by one gate per decoder layer over their outputs, the gates
  /// trained on the routers' mixed examples (drawn by `seed`), then tested on every task.
  func trainLayerGates(seed: UInt64) throws {
    let started = Date()
    let experts = try attachedExperts().experts
    let recipe = plan.layerGateRecipe
    let mixture = LayerGatedMixture(
      model: model, experts: experts, targets: recipe.targets, temperature: recipe.temperature,
      seed: seed)
    let mixed = MixRecipe.mixedExamples(
      tasks.map { project.examples($0, .train) }, count: recipe.examples, seed: seed)
    var progress = ProgressDisplay("  gates")
    let losses = try mixture.train(
      on: mixed, tokenizer: project.tokenizer, recipe: recipe, seed: seed
    ) { progress.show($0) }
    keepMeasured(
      record(
        plan.layerGatesID(seed), seed: seed,
        doing:
          "MoLE, a gate per decoder layer over the \(tasks.count) experts' outputs, trained \(recipe.training.steps) steps on \(grouped(recipe.examples)) mixed examples with balance weight \(recipe.balanceWeight)"
      ), losses: losses, parameters: mixture.gateParameters(), started: started)
  }

  func expertFolder(_ task: ToyTask) -> URL {
    folder.appendingPathComponent("experts/\(task.name)")
  }

  func expertJob(_ task: ToyTask) -> Job {
    Job(
      id: plan.expertID(task), label: "\(task.name) expert, seed \(plan.expertSeed)",
      cost: Double(plan.expertSteps) * 0.08, isExpert: true
    ) { _ = try self.expert(task) }
  }

  /// Every task's expert, read or trained, attached to the model by task name after every
  /// other adapter is detached; and the experts' files.
  func attachedExperts() throws -> (
    files: [LoRAAdapterFile], experts: [(name: String, adapters: [String: LoRA])]
  ) {
    let files = try tasks.map { try expert($0) }
    model.detachAdapters()
    return (files, try zip(tasks, files).map { ($0.name, try attachedAdapters($1, model)) })
  }

  /// Task `task`'s expert (every projection, seed `plan.expertSeed`): read once from the
  /// report folder if its run is recorded, else trained (stage 1), saved as a PEFT adapter
  /// and measured on its task.
  func expert(_ task: ToyTask) throws -> LoRAAdapterFile {
    if let file = experts[task.name] { return file }
    let seed = plan.expertSeed
    let id = plan.expertID(task)
    let adapterFolder = expertFolder(task)
    if results.runs[id] != nil, let file = try? LoRAAdapterFile.load(from: adapterFolder) {
      experts[task.name] = file
      return file
    }
    let started = Date()
    model.detachAdapters()
    let recipe = plan.expertRecipe
    var progress = ProgressDisplay("  \(task.name)")
    let (adapters, losses) = try recipe.train(
      model, on: project.examples(task, .train), tokenizer: project.tokenizer, seed: seed
    ) { progress.show($0) }
    let file = LoRAAdapterFile(adapters: adapters, alpha: recipe.alpha, baseModel: baseFolder.path)
    try file.save(to: adapterFolder)
    var run = record(
      id, seed: seed,
      equivalent:
        "tinymixer train \(task.name) --steps \(recipe.training.steps) --seed \(seed)\(plan.architectureFlag)"
    )
    run.accuracy[task.name] = model.accuracy(test(task), tokenizer: project.tokenizer)
    run.losses = thinned(losses)
    run.trainedParameters = adapters.reduce(0) { $0 + $1.adapter.parameterCount }
    keep(run, started: started)
    experts[task.name] = file
    print(
      "    test accuracy \(percent(run.accuracy[task.name]!)) (\(formatDuration(Date().timeIntervalSince(started))))"
    )
    return file
  }

  /// Each task's accuracy with the frozen experts mixed by fixed weights at every site, the
  /// routers bypassed (`ReproducePlan.blends`): how much blending the experts tolerate.
  func measureBlends() throws {
    let mixture = Mixture(model: model, experts: try attachedExperts().experts, seed: 0)
    let count = tasks.count
    for blend in plan.blends(layers: model.layerCount) {
      let blendStarted = Date()
      var run = record(
        plan.blendID(blend.id), seed: 0,
        doing:
          "\(blend.name.replacingOccurrences(of: "`", with: "")), fixed weights, routers bypassed"
      )
      for (own, task) in tasks.enumerated() {
        let examples = Array(project.examples(task, .test).prefix(plan.blendExamples))
        run.accuracy[task.name] = mixture.blending({ layer, position in
          blend.weights(own, count, layer, position)
        }) { model.accuracy(examples, tokenizer: project.tokenizer) }
      }
      run.seconds = Date().timeIntervalSince(blendStarted)
      results.runs[run.id] = run
      print("    \(blend.name): mean \(percent(run.meanAccuracy(tasks.map(\.name))))")
    }
    model.detachAdapters()
  }

  /// One LoRA with the experts' parameter budget, trained on every task's training
  /// examples together, measured on every task.
  func trainShared(seed: UInt64, allExpertsSteps: Bool = false) throws {
    let started = Date()
    model.detachAdapters()
    let recipe = plan.sharedRecipe(experts: tasks.count, allExpertsSteps: allExpertsSteps)
    var progress = ProgressDisplay("  shared")
    let (adapters, losses) = try recipe.train(
      model, on: tasks.flatMap { project.examples($0, .train) }, tokenizer: project.tokenizer,
      seed: seed
    ) { progress.show($0) }
    keepMeasured(
      record(
        plan.sharedID(seed, allExpertsSteps: allExpertsSteps), seed: seed,
        doing:
          "one rank-\(recipe.rank) LoRA (α \(Int(recipe.alpha))) trained \(recipe.training.steps) steps on every task's training split"
      ), losses: losses, parameters: adapters.flatMap { $0.adapter.namedParameters() },
      started: started)
  }

  /// The job of the mixture `recipe` with `seed` (and, if `topK`, its top-k curve).
  func mixerJob(_ label: String, recipe: MixRecipe, seed: UInt64, topK: Bool = false) -> Job {
    Job(
      id: plan.mixerID(recipe, seed: seed), label: "mixture: \(label), seed \(seed)",
      cost: Double(plan.routerSteps) * 0.2 + (topK ? 30 : 8), needsExperts: true
    ) { try self.trainMixture(recipe, seed: seed, topK: topK) }
  }

  /// The routers of `recipe` trained over the experts (stage 2) with `seed`, and the task
  /// loss of each step. The default mixer of the first seed is saved for the transfer
  /// experiment.
  func trainedMixture(_ recipe: MixRecipe, seed: UInt64) throws -> (Mixture, [Double]) {
    let (files, experts) = try attachedExperts()
    let mixture = project.mixture(recipe, over: experts, model: model, seed: seed)
    let mixed = project.mixedExamples(tasks, recipe: recipe, seed: seed)
    var progress = ProgressDisplay("  routers")
    var taskLosses: [Double] = []
    try project.train(mixture, on: mixed, recipe: recipe, seed: seed) {
      progress.show($0.step)
      taskLosses.append($0.task)
    }
    if recipe == plan.mixRecipe() && seed == plan.seeds[0] && !plan.mainTableOnly {
      try MixerFiles.save(
        mixture, experts: files, baseModel: baseFolder.path, loss: recipe.loss,
        to: defaultMixerFolder)
    }
    return (mixture, taskLosses)
  }

  /// Routers over the seed's experts (stage 2), then accuracy, load and activation.
  func trainMixture(_ recipe: MixRecipe, seed: UInt64, topK: Bool) throws {
    let started = Date()
    let (mixture, taskLosses) = try trainedMixture(recipe, seed: seed)
    var run = record(
      plan.mixerID(recipe, seed: seed), seed: seed, equivalent: mixCommand(recipe, seed: seed))
    run.accuracy = project.testAccuracy(of: mixture, on: tasks, limit: plan.testExamples)
    run.losses = thinned(taskLosses)
    run.trainedParameters = mixture.routerParameters().reduce(0) { $0 + $1.tensor.count }
    let routed = tasks.map { Array(project.examples($0, .test).prefix(plan.routingExamples)) }
    let tally = mixture.tally(routed.flatMap { $0 }, tokenizer: project.tokenizer)
    run.load = tally.selectionShare
    run.balance = tally.mean(\.balance)
    run.tokenEntropy = tally.mean(\.meanEntropy)
    run.meanEntropy = tally.mean(\.entropyOfMean)
    let perTask = routed.map { mixture.tally($0, tokenizer: project.tokenizer) }
    run.activation = Dictionary(
      uniqueKeysWithValues: zip(tasks, perTask).map { ($0.name, $1.firstChoiceShare) })
    run.ownWeightByLayer = Dictionary(
      uniqueKeysWithValues: zip(tasks, perTask).enumerated().map { own, item in
        (item.0.name, item.1.meanByLayer { $0.meanWeight[own] })
      })
    if topK {
      run.accuracyByK = (1...tasks.count).map { k in
        mixture.settings.inferenceK = k
        return tasks.map { mixture.accuracy(test($0), tokenizer: project.tokenizer) }.reduce(0, +)
          / Double(tasks.count)
      }
      mixture.settings.inferenceK = recipe.routing.inferenceK
    }
    keep(run, started: started)
    print("    mean test accuracy \(percent(run.meanAccuracy(tasks.map(\.name))))")
  }

  /// The `tinymixer mix` command that trains and measures the same mixture: the tasks and
  /// every setting that differs from `mix`'s defaults.
  func mixCommand(_ recipe: MixRecipe, seed: UInt64) -> String {
    let standard = MixRecipe()
    var parts = ["tinymixer mix"] + tasks.map(\.name)
    let (routing, loss) = (recipe.routing, recipe.loss)
    if routing.input != standard.routing.input {
      parts.append("--router-input \(routing.input.rawValue)")
    }
    if routing.mode != standard.routing.mode { parts.append("--routing \(routing.mode.rawValue)") }
    if routing.k != standard.routing.k { parts.append("--k \(routing.k)") }
    if loss.kind != standard.loss.kind { parts.append("--loss \(loss.kind.rawValue)") }
    if loss.kind.hasEntropyTerm && loss.entropy != standard.loss.entropy {
      parts.append("--entropy \(loss.entropy.rawValue)")
    }
    if loss.kind.hasBalanceTerm && loss.alpha != standard.loss.alpha {
      parts.append("--alpha-balance \(loss.alpha)")
    }
    if loss.kind.hasBalanceTerm && loss.counting != standard.loss.counting {
      parts.append("--balance-per \(loss.counting.rawValue)")
    }
    if loss.kind.hasEntropyTerm && loss.lambda != standard.loss.lambda {
      parts.append("--lambda \(loss.lambda)")
    }
    if loss.zLoss != standard.loss.zLoss { parts.append("--z-loss \(loss.zLoss)") }
    if recipe.routerExamples != standard.routerExamples {
      parts.append("--router-examples \(recipe.routerExamples)")
    }
    if recipe.training.steps != standard.training.steps {
      parts.append("--steps \(recipe.training.steps)")
    }
    if let batch = plan.batchSize { parts.append("--batch \(batch)") }
    if plan.expertSteps != ExpertRecipe.standard.training.steps {
      parts.append("--expert-steps \(plan.expertSteps)")
    }
    if seed != 0 {
      // Another seed's routers over the seed-0 experts: plug and play, as the reproduction
      // shares the experts (`mix --seed N` alone would train seed-N experts).
      parts.append("--seed \(seed)")
    }
    parts += plan.architectureArguments
    let sites = SiteChoice(targets: recipe.targets) ?? .all
    if sites != .all { parts.append("--sites \(sites.rawValue)") }
    if sites != .all || seed != 0 {
      parts.append("--experts")
      parts += tasks.map { "\(folderName)/experts/\($0.name)" }
    }
    return parts.joined(separator: " ")
  }
}
