import Foundation
import LoRAMixer
import SafeTensors
import ToyTasks
import Training

/// Writes `report.md` and the SVG figures from a reproduction's results: every number in
/// them is read from `results.json`, and the text says what the numbers show.
public struct Report {
  let results: Results
  let plan: ReproducePlan

  /// The report of `results`, made by `plan`.
  public init(results: Results, plan: ReproducePlan) { (self.results, self.plan) = (results, plan) }

  var tasks: [String] { results.tasks }
  /// The tasks' names without `toy-`, for axes and narrow table headers.
  var shortTasks: [String] { tasks.map { $0.replacingOccurrences(of: "toy-", with: "") } }
  var seeds: [UInt64] { plan.seeds }
  var first: UInt64 { plan.seeds[0] }

  /// The run `id`, which the plan made.
  func run(_ id: String) throws -> RunRecord {
    guard let run = results.runs[id] else {
      throw ToolError.failure(
        "results.json has no run '\(id)'; run `\(plan.command)` to finish the reproduction")
    }
    return run
  }

  // MARK: Statistics

  /// Mean and sample standard deviation.
  public static func meanAndDeviation(_ values: [Double]) -> (mean: Double, deviation: Double?) {
    let mean = values.reduce(0, +) / Double(values.count)
    guard values.count > 1 else { return (mean, nil) }
    let variance =
      values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count - 1)
    return (mean, variance.squareRoot())
  }

  /// `93.2 ± 1.4` (percent) or `93.2` for one value.
  static func cell(_ values: [Double]) -> String {
    let (mean, deviation) = meanAndDeviation(values)
    return String(format: "%.1f", 100 * mean)
      + (deviation.map { String(format: " ± %.1f", 100 * $0) } ?? "")
  }

  /// A table row: `name`, its score on each task, then its mean.
  static func scoreRow(_ name: String, _ scores: Scores) -> [String] {
    [name] + scores.perTask.map(cell) + [cell(scores.mean)]
  }

  /// Each seed's accuracy on `task` of the method whose run at a seed is `id(seed)`.
  func accuracies(_ task: String, _ id: (UInt64) -> String) throws -> [Double] {
    try seeds.map { try run(id($0)).accuracy[task] ?? .nan }
  }

  /// Each seed's mean accuracy over the tasks.
  func means(_ id: (UInt64) -> String) throws -> [Double] {
    try seeds.map { try run(id($0)).meanAccuracy(tasks) }
  }

  /// The run of the main table's mixture `name` (see `ReproducePlan.mainMixers`) at `seed`.
  func mainMixerID(_ name: String, seed: UInt64) -> String {
    plan.mixerID(plan.mainMixers().first { $0.0 == name }!.1, seed: seed)
  }

  /// The run of the first seed's ablation `name` (see `Reproduction.ablations`).
  func ablation(_ name: String) throws -> RunRecord {
    try run(plan.mixerID(plan.ablations().first { $0.0 == name }!.1, seed: first))
  }

  /// How the default recipe routes, in a few words.
  var defaultRecipe: String {
    let recipe = plan.mixRecipe()
    return
      "\(recipe.routing.input.rawValue) router, \(recipe.routing.mode) top-\(recipe.routing.k), RSL \(recipe.loss.entropy.rawValue) with α \(recipe.loss.alpha) counted per \(recipe.loss.counting.rawValue), λ \(recipe.loss.lambda), \(grouped(recipe.routerExamples)) router examples"
  }

  /// The main table's methods by key: a row name, the run at a seed for a task, and the
  /// seeds it ran with.
  var methods: [(key: String, name: String, id: (UInt64, String) -> String, seeds: [UInt64])] {
    func mixer(_ name: String) -> (UInt64, String) -> String {
      { seed, _ in mainMixerID(name, seed: seed) }
    }
    let sharedAll = plan.sharedAllStepsSeeds
    let sharedAllSeeds =
      sharedAll == seeds
      ? ""
      : ", " + (sharedAll.count == 1 ? "seed " : "seeds ")
        + sharedAll.map(String.init).joined(separator: ", ") + " only"
    let all: [(key: String, name: String, id: (UInt64, String) -> String, seeds: [UInt64])] = [
      ("base", "base model (frozen)", { _, _ in "base" }, [first]),
      (
        "words", "bag of words (naive Bayes on the prompt's words, no model)",
        { _, _ in "bag-of-words" }, [first]
      ),
      (
        "experts", "single-task LoRA (oracle routing)",
        { _, task in plan.expertID(ToyTask.named(task)!) }, [first]
      ),
      (
        "shared", "shared LoRA, rank \(plan.sharedRecipe(experts: tasks.count).rank)",
        { seed, _ in plan.sharedID(seed) }, seeds
      ),
      (
        "shared-all-steps",
        "shared LoRA, rank \(plan.sharedRecipe(experts: tasks.count).rank), \(grouped(plan.sharedRecipe(experts: tasks.count, allExpertsSteps: true).training.steps)) steps (all the experts' together\(sharedAllSeeds))",
        { seed, _ in plan.sharedID(seed, allExpertsSteps: true) }, sharedAll
      ),
      (
        "lorahub", "LoRAHub (experts composed by their matrices, weights searched per task)",
        { seed, _ in plan.loraHubID(seed) }, seeds
      ),
      (
        "mixlora",
        "MixLoRA (top-2 of \(plan.feedForwardExpertsRecipe.experts ?? tasks.count) LoRA experts in every feed-forward block, a shared attention LoRA; \(plan.feedForwardExpertsRecipe.training.steps) steps from scratch)",
        { seed, _ in plan.feedForwardExpertsID(seed) },
        plan.runsFeedForwardExperts ? seeds : []
      ),
      (
        "mole", "MoLE (one gate per layer over the experts' outputs)",
        { seed, _ in plan.layerGatesID(seed) }, seeds
      ),
      ("paper", "LoRA-Mixer as the paper describes it (per-token router)", mixer("paper"), seeds),
      ("default", "LoRA-Mixer, tinymixer's default (\(defaultRecipe))", mixer("default"), seeds),
    ]
    return all.filter { !$0.seeds.isEmpty }
  }

  /// Each method of the main table with its scores.
  func scoredMethods() throws -> [(key: String, name: String, scores: Scores)] {
    try methods.map { ($0.key, $0.name, try scores($0.id, seeds: $0.seeds)) }
  }

  /// Per-task and mean accuracies of a method over `seeds`.
  func scores(_ id: (UInt64, String) -> String, seeds: [UInt64]) throws -> Scores {
    let perTask = try tasks.map { task in
      try seeds.map { try run(id($0, task)).accuracy[task] ?? .nan }
    }
    let mean = seeds.indices.map { s in perTask.map { $0[s] }.reduce(0, +) / Double(tasks.count) }
    return Scores(perTask: perTask, mean: mean)
  }

  /// A method's accuracies: per task over the seeds, and each seed's mean over the tasks.
  struct Scores {
    var perTask: [[Double]]
    var mean: [Double]
    /// The mean over seeds of the mean over tasks.
    var average: Double { Report.meanAndDeviation(mean).mean }
  }

  // MARK: Writing

  /// The report's text and figures as they are written, section by section.
  struct Document {
    var text = ""
    var figures: [(name: String, svg: String)] = []

    mutating func line(_ string: String = "") { text += string + "\n" }

    mutating func table(_ header: [String], _ rows: [[String]]) {
      line("| " + header.joined(separator: " | ") + " |")
      line("|" + header.indices.map { $0 == 0 ? " --- |" : " ---: |" }.joined())
      for row in rows { line("| " + row.joined(separator: " | ") + " |") }
      line()
    }

    mutating func figure(_ name: String, _ alt: String, _ svg: String) {
      figures.append((name, svg))
      line("![\(alt)](\(name))")
      line()
    }
  }

  /// `93.2` for a share.
  static func number(_ value: Double) -> String { String(format: "%.1f", 100 * value) }

  /// Writes `report.md` and the figures into `folder`.
  public func write(to folder: URL) throws {
    var document = Document()
    let scored = try scoredMethods()
    let main = Dictionary(uniqueKeysWithValues: scored.map { ($0.key, $0.scores) })
    header(&document)
    mainTable(&document, scored)
    if plan.mainTableOnly {
      document.line("## What was found")
      document.line()
      document.line("- " + architectureFinding(main))
      document.line()
      try parameters(&document)
      try curves(&document)
      runs(&document)
      return try save(document, to: folder)
    }
    try otherArchitectures(&document, folder: folder)
    try parameters(&document)
    try blending(&document)
    try routing(&document)
    let efficiency = try dataEfficiency(&document)
    try routingLosses(&document)
    let byK = try topK(&document)
    try ablations(&document)
    try transfer(&document)
    try curves(&document)
    document.line("## What was found")
    document.line()
    for finding in try findings(main, efficiency: efficiency, byK: byK) {
      document.line("- " + finding)
    }
    document.line()
    runs(&document)
    try save(document, to: folder)
  }

  /// Writes `document`'s text as `report.md`, and its figures, into `folder`.
  func save(_ document: Document, to folder: URL) throws {
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    for (name, svg) in document.figures {
      try writeAtomically(Data(svg.utf8), to: folder.appendingPathComponent(name))
    }
    try writeAtomically(Data(document.text.utf8), to: folder.appendingPathComponent("report.md"))
  }

  var seedList: String {
    (seeds.count == 1 ? "seed " : "seeds ") + seeds.map(String.init).joined(separator: ", ")
  }

  /// `, and 3,600 (the experts' total)` if the plan trains the shared LoRA that long.
  var longShared: String {
    plan.sharedAllStepsSeeds.isEmpty
      ? ""
      : ", and \(grouped(plan.sharedRecipe(experts: tasks.count, allExpertsSteps: true).training.steps)) (the experts' total)"
  }

  func header(_ document: inout Document) {
    let allSeconds = results.runs.values.reduce(0) { $0 + $1.seconds }
    let recipe = plan.mixRecipe()
    document.line(
      "# LoRA-Mixer's mechanics, regenerated on toy tasks"
        + (plan.architecture == .llama ? "" : ", on a \(architectureName) base"))
    document.line()
    document.line(
      "Made by `\(plan.command)` (plan `\(plan.name)`: \(seedList); experts \(plan.expertSteps) steps; shared LoRA \(plan.sharedSteps) steps\(longShared); routers \(plan.routerSteps) steps of \(recipe.training.batchSize) on \(grouped(recipe.routerExamples)) mixed examples unless said otherwise; \(plan.testExamples) test examples per task). The runs' own times add up to \(formatDuration(allSeconds)) (`reproduce` runs as many at once as it has threads, one thread each, so the wall time is shorter). Every number is in `results.json` with the run that made it, its seed, and the standalone command that trains the same thing; the runs are listed at the end."
    )
    document.line()
  }

  func mainTable(
    _ document: inout Document, _ scored: [(key: String, name: String, scores: Scores)]
  ) {
    document.line("## Main table (the paper's Table 2)")
    document.line()
    document.line(
      "Test accuracy (%), \(seeds.count == 1 ? "one run" : "mean ± standard deviation over \(seedList)") of the routers and the shared LoRA. The base is one model, the bag of words has no randomness, and the experts are trained once (seed \(plan.expertSeed)) and shared by every seed's routers, so their rows are single runs. LoRAHub is told each task: its weights are searched on \(LoRAHubRecipe().examples) of the task's training examples (\(LoRAHubRecipe().budget) evaluations of a (1+1) evolution strategy, L1 penalty \(LoRAHubRecipe().l1)), and the composition is tested on that task. MoLE is not told the task: one gate per decoder layer scores the experts' outputs at the layer's first projection (averaged over the tokens so far) against a learned vector and weighs every projection of the layer by the softmax, trained like the routers with MoLE's balance loss (weight \(LayerGateRecipe().balanceWeight)). MixLoRA uses no stage-1 expert: it trains, from scratch and on all the tasks' training examples at once, a router and \(plan.feedForwardExpertsRecipe.experts ?? tasks.count) rank-\(plan.feedForwardExpertsRecipe.rank) LoRA experts (on gate, up and down) in every feed-forward block, each token through its top \(plan.feedForwardExpertsRecipe.k), with a plain LoRA on the attention projections and Mixtral's balance loss (weight \(plan.feedForwardExpertsRecipe.balanceWeight), MixLoRA's default); it cannot run on a Mamba, which has no feed-forward block. Inference routes top-\(plan.mixRecipe().routing.inferenceK) for every mixture. The two LoRA-Mixer rows differ only in what routes a token (its own input, or the mean of its site's router logits over the sequence so far, `<bos>` left out), the weight α of the balance term and the mixed examples the routers train on (\(grouped(plan.mixRecipe(paper: true).routerExamples)) as in the paper, or \(grouped(plan.mixRecipe().routerExamples)))."
    )
    document.line()
    document.table(
      ["method"] + tasks + ["mean"],
      scored.map { Self.scoreRow($0.name, $0.scores) })
  }

  /// `Mamba` for a Mamba base.
  var architectureName: String { plan.architecture == .mamba ? "Mamba" : "Llama" }

  /// The main table of the same plan on a Mamba base, from the reproduction in the folder's
  /// `mamba/` (`tinymixer reproduce --architecture mamba`), if it is there. A Mamba folder
  /// of a plan this one contains will do (the extended plan's main table is the full one's).
  func otherArchitectures(_ document: inout Document, folder: URL) throws {
    let mambaFolder = folder.appendingPathComponent("mamba")
    guard let results = try Results.load(from: mambaFolder) else { return }
    let mamba = Report(results: results, plan: plan.on(.mamba))
    document.line("## The main table on a Mamba base")
    document.line()
    guard plan.contains(results.plan), let scored = try? mamba.scoredMethods() else {
      document.line(
        "`mamba/` holds an unfinished or different reproduction; `\(mamba.plan.command)` finishes it."
      )
      document.line()
      return
    }
    let madeBy = (ReproducePlan.named(results.plan) ?? plan).on(.mamba).command
    document.line(
      "The main table on a Mamba base of the same width, depth and vocabulary (`\(madeBy)`; its own report, with its parameters, curves and runs, is [mamba/report.md](mamba/report.md)). The experts sit at each layer's `in_proj`, `x_proj`, `dt_proj` and `out_proj`, and so do the routers. "
        + mamba.architectureFinding(
          Dictionary(uniqueKeysWithValues: scored.map { ($0.key, $0.scores) })))
    document.line()
    document.table(
      ["method"] + tasks + ["mean"],
      scored.map { Self.scoreRow($0.name, $0.scores) })
  }

  /// The main table in one sentence: the experts, the mixtures and the shared LoRA.
  func architectureFinding(_ main: [String: Scores]) -> String {
    let (expert, shared) = (main["experts"]!, main["shared"]!)
    let (paper, standard) = (main["paper"]!, main["default"]!)
    let gap = standard.average - expert.average
    return
      "On the \(architectureName) the frozen base scores \(Self.number(main["base"]!.average))%, the single-task experts \(Self.number(expert.average))%, the shared LoRA \(Self.number(shared.average))%, LoRAHub \(Self.number(main["lorahub"]!.average))% and MoLE \(Self.number(main["mole"]!.average))%; tinymixer's default LoRA-Mixer scores \(Self.number(standard.average))%, \(points(gap)) \(side(gap)) the experts, and the paper's per-token router \(Self.number(paper.average))%."
  }

  func parameters(_ document: inout Document) throws {
    let expertParameters = try tasks.map { task in
      try run(plan.expertID(ToyTask.named(task)!)).trainedParameters
    }
    let allExperts = expertParameters.reduce(0, +)
    let shared = try run(plan.sharedID(first)).trainedParameters
    let routers = try run(mainMixerID("default", seed: first)).trainedParameters
    func row(_ name: String, _ count: Int) -> [String] {
      [name, grouped(count), percent(Double(count) / Double(shared))]
    }
    document.line("## Trainable parameters")
    document.line()
    document.line(
      "The base has \(grouped(results.baseParameters)) parameters, all frozen. The paper's \"48% of the parameters\" compares what LoRA-Mixer trains with what the other methods train; here are the counts. A router that averages its logits over the sequence has the same parameters as the per-token one."
    )
    document.line()
    document.table(
      ["method", "trained parameters", "share of the shared LoRA's"],
      [
        row("one single-task expert", expertParameters[0]),
        row("all \(tasks.count) experts (stage 1)", allExperts),
        row("shared LoRA", shared),
        row(
          "LoRAHub's weights (\(tasks.count) per task)",
          try run(plan.loraHubID(first)).trainedParameters),
        row("MoLE's gates (one per layer)", try run(plan.layerGatesID(first)).trainedParameters),
        plan.runsFeedForwardExperts
          ? row(
            "MixLoRA: feed-forward experts, routers and attention LoRA",
            try run(plan.feedForwardExpertsID(first)).trainedParameters) : nil,
        row("LoRA-Mixer routers (stage 2)", routers),
        row("LoRA-Mixer, experts and routers", allExperts + routers),
      ].compactMap { $0 })
  }

  /// The blends as measured: each row's name and run.
  func blendRuns() throws -> [(name: String, id: String, run: RunRecord)] {
    try plan.blends(layers: layerCount).map { ($0.name, $0.id, try run(plan.blendID($0.id))) }
  }

  /// Decoder layers of the base, from the recorded per-layer routing.
  var layerCount: Int {
    results.runs[mainMixerID("default", seed: first)]?.ownWeightByLayer?.values.first?.count ?? 4
  }

  func blending(_ document: inout Document) throws {
    document.line("## How much blending the experts tolerate")
    document.line()
    document.line(
      "No router is trained here: every site mixes the frozen experts by the same fixed weights at every token, and each task is scored with its own expert as \"own\" (\(plan.blendExamples) test examples per task). This is what a router's weights cost, whatever the router."
    )
    document.line()
    document.table(
      ["fixed weights"] + tasks + ["mean"],
      try blendRuns().map { name, _, run in
        [name] + tasks.map { Self.number(run.accuracy[$0] ?? .nan) }
          + [Self.number(run.meanAccuracy(tasks))]
      })
  }

  func routing(_ document: inout Document) throws {
    let defaultRun = try run(mainMixerID("default", seed: first))
    let paperRun = try run(mainMixerID("paper", seed: first))
    let noneRun = try ablation("no routing loss")
    let loadRuns: [(String, RunRecord)] = [
      ("default (RSL)", defaultRun), ("paper (per-token)", paperRun),
      ("soft + balance, per-token", try ablation("soft mixture + balance loss, per-token router")),
      ("default, RSL sharpen", try ablation("RSL sharpen")), ("default, no routing loss", noneRun),
    ]
    document.line("## Global expert load (the paper's Figure 3)")
    document.line()
    document.line(
      "Each expert's share of the top-k selections over a mixed evaluation set (\(plan.routingExamples) test examples per task, every token, every site), seed \(first). A perfectly even load is \(percent(1 / Double(tasks.count))) each."
    )
    document.line()
    document.table(
      ["mixture"] + tasks + ["balance", "token entropy"],
      loadRuns.map { name, run in
        [name] + (run.load ?? []).map(percent)
          + [
            String(format: "%.3f", run.balance ?? .nan),
            String(format: "%.3f", run.tokenEntropy ?? .nan),
          ]
      })
    document.figure(
      "global-load.svg", "global load",
      Chart.bars(
        title: "Global expert load over a mixed evaluation set (seed \(first))",
        categories: shortTasks,
        series: loadRuns.map { ChartSeries(name: $0.0, values: $0.1.load ?? []) },
        yLabel: "share of selections"))

    document.line("## Per-task expert activation, with and without RSL (the paper's Figure 4)")
    document.line()
    document.line(
      "For each task's test tokens (`<bos>` included), the share of first choices each expert gets (mean over sites), seed \(first). A specialised router puts each task on its own expert: the diagonal."
    )
    document.line()
    let activationRuns = [
      ("activation-rsl.svg", "with RSL (tinymixer's default)", defaultRun),
      ("activation-paper.svg", "with RSL, per-token router (the paper's)", paperRun),
      ("activation-none.svg", "without a routing loss (default router)", noneRun),
    ]
    for (_, name, run) in activationRuns {
      document.line("**\(name)**, diagonal mean \(percent(diagonal(run)))")
      document.line()
      document.table(
        ["task"] + shortTasks,
        tasks.map { task in [task] + (run.activation?[task] ?? []).map(percent) })
    }
    for (file, name, run) in activationRuns {
      document.figure(
        file, "activation \(name)",
        Chart.bars(
          title: "Expert activation per task, \(name) (seed \(first))", categories: shortTasks,
          series: tasks.enumerated().map { index, expert in
            ChartSeries(name: expert, values: tasks.map { run.activation?[$0]?[index] ?? 0 })
          }, yLabel: "share of first choices"))
    }

    document.line("## The own expert's weight, layer by layer")
    document.line()
    document.line(
      "First choices say which expert leads; the weight says how much of the update it supplies. For each task's test tokens, the mean weight of its own expert at each decoder layer's sites (seed \(first)); the blending table above says what a weight below about 0.9 costs."
    )
    document.line()
    for (name, run) in [
      ("tinymixer's default", defaultRun), ("the paper's per-token router", paperRun),
    ] {
      document.line("**\(name)**, mean \(percent(ownWeight(run)))")
      document.line()
      document.table(
        ["task"] + (0..<layerCount).map { "layer \($0)" },
        tasks.map { task in [task] + (run.ownWeightByLayer?[task] ?? []).map(percent) })
    }
  }

  /// What the data-efficiency table found: RSL's and the balance loss's mean accuracy at
  /// each router data count, and the larger of their standard deviations over seeds at the
  /// smallest count (0 for one seed).
  typealias Efficiency = (rsl: [Double], aux: [Double], lowSpread: Double)

  /// The data-efficiency table and its figure.
  func dataEfficiency(_ document: inout Document) throws -> Efficiency {
    let counts = plan.routerExampleCounts
    guard !counts.isEmpty else { return ([], [], 0) }
    let efficiencySeeds = Array(seeds.prefix(plan.dataEfficiencySeedCount))
    /// Each count's mean accuracy over the tasks, per seed.
    func perSeed(balanceOnly: Bool) throws -> [[Double]] {
      try counts.map { count in
        try efficiencySeeds.map { seed in
          try run(
            plan.mixerID(plan.dataEfficiencyRecipe(count, balanceOnly: balanceOnly), seed: seed)
          )
          .meanAccuracy(tasks)
        }
      }
    }
    let (rslSeeds, auxSeeds) = (try perSeed(balanceOnly: false), try perSeed(balanceOnly: true))
    let average = { (values: [Double]) in Self.meanAndDeviation(values).mean }
    let (rsl, aux) = (rslSeeds.map(average), auxSeeds.map(average))
    let seedNames =
      (efficiencySeeds.count == 1 ? "seed " : "mean ± standard deviation over seeds ")
      + efficiencySeeds.map(String.init).joined(separator: ", ")
    document.line("## Router data efficiency (the paper's Table 9)")
    document.line()
    document.line(
      "Mean test accuracy (%) over the tasks with routers trained on N mixed examples (the same \(plan.routerSteps) steps each), tinymixer's default router, \(seedNames)."
    )
    document.line()
    document.table(
      ["routing loss"] + counts.map { "N = \(grouped($0))" },
      [["RSL (spread)"] + rslSeeds.map(Self.cell), ["balance loss only"] + auxSeeds.map(Self.cell)])
    var series = [
      ChartSeries(name: "RSL (spread)", values: rsl),
      ChartSeries(name: "balance loss", values: aux),
    ]
    if efficiencySeeds.count > 1 {
      // The spread: each loss's lowest and highest seed at every N.
      for (name, values) in [("RSL", rslSeeds), ("balance", auxSeeds)] {
        series.append(ChartSeries(name: "\(name), lowest seed", values: values.map { $0.min()! }))
        series.append(ChartSeries(name: "\(name), highest seed", values: values.map { $0.max()! }))
      }
    }
    document.figure(
      "data-efficiency.svg", "data efficiency",
      Chart.lines(
        title:
          "Router data efficiency (\(efficiencySeeds.count == 1 ? "seed \(first)" : "\(efficiencySeeds.count) seeds"))",
        x: counts.map(Double.init), series: series,
        xLabel: "router training examples (log scale)", yLabel: "mean test accuracy", logX: true))
    let lowSpread = [rslSeeds[0], auxSeeds[0]].map { Self.meanAndDeviation($0).deviation ?? 0 }
      .max()!
    return (rsl, aux, lowSpread)
  }

  /// The routing losses compared, everything else fixed (the paper's Table 8).
  func routingLosses(_ document: inout Document) throws {
    let lossSeeds = Array(seeds.prefix(plan.routingLossSeedCount))
    guard !lossSeeds.isEmpty else { return }
    document.line("## Routing losses compared (the paper's Table 8)")
    document.line()
    document.line(
      "Test accuracy (%), \(lossSeeds.count == 1 ? "seed \(lossSeeds[0])" : "mean ± standard deviation over seeds " + lossSeeds.map(String.init).joined(separator: ", ")): the same experts, the same router (\(plan.mixRecipe().routing.input.rawValue), \(plan.mixRecipe().routing.mode) top-\(plan.mixRecipe().routing.k), \(grouped(plan.mixRecipe().routerExamples)) router examples), the same data and steps; only the routing loss changes. The balance term weighs α = \(plan.mixRecipe().loss.alpha) and the entropy term λ = \(plan.mixRecipe().loss.lambda) wherever they appear; `spread` subtracts λ·H (the paper's equation), `sharpen` adds it (its prose)."
    )
    document.line()
    let rows = try plan.routingLosses().map { name, recipe in
      (name, try scores({ seed, _ in plan.mixerID(recipe, seed: seed) }, seeds: lossSeeds))
    }
    document.table(
      ["routing loss"] + tasks + ["mean"],
      rows.map(Self.scoreRow)
    )
    let best = rows.max { $0.1.average < $1.1.average }!
    let none = rows[0].1.average
    document.line(
      "The paper finds RSL best of the losses it compares. Here the best mean is \(best.0)'s, \(Self.number(best.1.average))%; no routing loss at all scores \(Self.number(none))%."
    )
    document.line()
  }

  func topK(_ document: inout Document) throws -> [Double] {
    let byK = try run(mainMixerID("default", seed: first)).accuracyByK ?? []
    document.line("## Top-k at inference (the paper's Figure 5)")
    document.line()
    document.line(
      "tinymixer's default routers (trained at k = \(plan.mixRecipe().routing.k), seed \(first)) evaluated with k = 1 to \(tasks.count) experts per token; mean test accuracy (%)."
    )
    document.line()
    document.table(
      ["k"] + byK.indices.map { "\($0 + 1)" }, [["mean accuracy"] + byK.map(Self.number)])
    document.figure(
      "top-k.svg", "top-k",
      Chart.lines(
        title: "Experts per token at inference (seed \(first))",
        x: byK.indices.map { Double($0 + 1) },
        series: [ChartSeries(name: "LoRA-Mixer", values: byK)], xLabel: "k (experts per token)",
        yLabel: "mean test accuracy"))
    return byK
  }

  func ablations(_ document: inout Document) throws {
    document.line("## Ablations")
    document.line()
    document.line(
      "Test accuracy (%), seed \(first): tinymixer's default with one thing changed, and the per-token soft mixture with a plain balance loss (a classic mixture of experts)."
    )
    document.line()
    let rows =
      [("tinymixer's default", try run(mainMixerID("default", seed: first)))]
      + (try plan.ablations().map { name, _ in (name, try ablation(name)) })
    document.table(
      ["variant"] + tasks + ["mean"],
      rows.map { name, run in
        [name] + tasks.map { Self.number(run.accuracy[$0] ?? .nan) }
          + [Self.number(run.meanAccuracy(tasks))]
      })
  }

  /// The default mixer of the first seed on other bases, untouched (the paper's Table 5).
  func transfer(_ document: inout Document) throws {
    let expertRuns = try tasks.map { try run(plan.expertID(ToyTask.named($0)!)) }
    var own = RunRecord(id: "", command: "", equivalent: "", seed: 0, seconds: 0)
    for (task, expert) in zip(tasks, expertRuns) { own.accuracy[task] = expert.accuracy[task] }
    var rows: [(String, RunRecord)] = [
      ("its own base: alone", try run("base")), ("its own base: each expert", own),
      ("its own base: the mixer", try run(mainMixerID("default", seed: first))),
    ]
    var means: [String: Double] = [:]
    for (id, name) in ReproducePlan.transferBases {
      for (what, label) in [("base", "alone"), ("experts", "each expert"), ("mixer", "the mixer")] {
        let measured = try run(plan.transferID(id, what))
        rows.append(("\(name): \(label)", measured))
        means["\(id)/\(what)"] = measured.meanAccuracy(tasks)
      }
    }
    let pretrainSteps = plan.transferPretrainSteps ?? BaseRecipe().training.steps
    document.line("## Cross-model transfer (the paper's Table 5)")
    document.line()
    document.line(
      "tinymixer's default mixer of seed \(first), experts and routers as trained, loaded untouched into two other bases of the same shape: \(ReproducePlan.transferBases[0].1) (\(grouped(pretrainSteps)) pretraining steps), and \(ReproducePlan.transferBases[1].1) (\(grouped(plan.transferFurtherSteps ?? pretrainSteps / 4)) more steps at a tenth of the learning rate, the data drawn anew). Test accuracy (%), \(plan.testExamples) test examples per task; each expert is measured on its own task."
    )
    document.line()
    document.table(
      ["base: what"] + tasks + ["mean"],
      rows.map { name, run in
        [name] + tasks.map { Self.number(run.accuracy[$0] ?? .nan) }
          + [Self.number(run.meanAccuracy(tasks))]
      })
    let here = try run(mainMixerID("default", seed: first)).meanAccuracy(tasks)
    func outcome(_ id: String) -> String {
      let (mixer, experts, alone) = (
        means["\(id)/mixer"]!, means["\(id)/experts"]!, means["\(id)/base"]!
      )
      let verdict =
        mixer >= here - 0.02
        ? "it carries over" : mixer <= alone + 0.05 ? "it is lost" : "it carries over in part"
      return
        "the mixer scores \(Self.number(mixer))% (its experts \(Self.number(experts))%, the base alone \(Self.number(alone))%): \(verdict)"
    }
    document.line(
      "The paper reports that its mixer carries over between base models. Here, against \(Self.number(here))% on its own base: on \(ReproducePlan.transferBases[0].1), \(outcome("another-seed")); on \(ReproducePlan.transferBases[1].1), \(outcome("further")). A LoRA update B·A and a router R are written in the coordinates of the hidden states of the base they were trained on. Another seed learns the same tasks in other coordinates (a rotation of a layer's features that the next layer undoes is an equally good model), so nothing ties its features to the ones the experts and routers read; further pretraining moves the same coordinates only as far as its extra steps take them."
    )
    document.line()
  }

  func curves(_ document: inout Document) throws {
    let expertCurves = try tasks.map { task in
      ChartSeries(name: task, values: try run(plan.expertID(ToyTask.named(task)!)).losses)
    }
    let routerCurves = try [("default", "tinymixer's default"), ("paper", "per-token (paper)")]
      .map { key, name in
        ChartSeries(name: name, values: try run(mainMixerID(key, seed: first)).losses)
      }
    document.line("## Training curves")
    document.line()
    document.figure(
      "loss-experts.svg", "expert losses",
      lossChart(
        "Stage 1: each expert's training loss (seed \(first))", expertCurves,
        steps: plan.expertSteps))
    document.figure(
      "loss-routers.svg", "router losses",
      lossChart(
        "Stage 2: the task loss while routers train (seed \(first))", routerCurves,
        steps: plan.routerSteps))
  }

  func runs(_ document: inout Document) {
    document.line("## Runs")
    document.line()
    document.line(
      "Every run, its seed, its wall time and the standalone command that trains the same thing: `reproduce --only` where no other command does (it makes that run alone, with the experts it reads; what the run did follows the `#`)."
    )
    document.line()
    document.table(
      ["run", "seed", "seconds", "equivalent command"],
      results.runs.values.sorted { $0.id < $1.id }.map {
        [$0.id, "\($0.seed)", String(format: "%.1f", $0.seconds), "`\($0.equivalent)`"]
      })
  }

  /// Training-loss curves of `steps` steps each, recorded thinned to fewer points: each point
  /// is placed at the step its stretch ends.
  func lossChart(_ title: String, _ series: [ChartSeries], steps: Int) -> String {
    let points = series[0].values.count
    return Chart.lines(
      title: title,
      x: (0..<points).map { Double($0 + 1) * Double(steps) / Double(max(1, points)) },
      series: series, xLabel: "step", yLabel: "answer cross-entropy", percent: false,
      markers: false)
  }

  /// The mean share of first choices a task's own expert gets.
  func diagonal(_ run: RunRecord) -> Double {
    tasks.enumerated().map { index, task in run.activation?[task]?[index] ?? 0 }.reduce(0, +)
      / Double(tasks.count)
  }

  /// The mean over tasks and layers of the weight a task's own expert gets.
  func ownWeight(_ run: RunRecord) -> Double {
    let layers = tasks.compactMap { run.ownWeightByLayer?[$0] }.flatMap { $0 }
    return layers.reduce(0, +) / Double(max(1, layers.count))
  }

  // MARK: Findings

  /// Sentences that compare the numbers with the paper's claims, written from the numbers.
  func findings(
    _ main: [String: Scores], efficiency: Efficiency, byK: [Double]
  ) throws -> [String] {
    let (base, words) = (main["base"]!, main["words"]!)
    let (expert, shared) = (main["experts"]!, main["shared"]!)
    let (paper, standard) = (main["paper"]!, main["default"]!)
    let defaultRun = try run(mainMixerID("default", seed: first))
    let paperRun = try run(mainMixerID("paper", seed: first))
    var found: [String] = []
    found.append(
      "The frozen base scores \(Self.number(base.average))% on average (chance level), the single-task experts \(Self.number(expert.average))%, the shared LoRA \(Self.number(shared.average))% after \(plan.sharedSteps) steps and \(Self.number(main["shared-all-steps"]!.average))% after \(grouped(plan.sharedRecipe(experts: tasks.count, allExpertsSteps: true).training.steps)), as many steps and examples as all the experts together."
    )
    found.append(wordsFinding(words, shared: shared))
    found.append(try loraHubFinding(main["lorahub"]!, expert: expert))
    found.append(layerGateFinding(main["mole"]!, mixer: main["default"]!, expert: expert))
    if let mixLoRA = main["mixlora"] {
      let gap = mixLoRA.average - standard.average
      found.append(
        "MixLoRA, trained jointly from scratch for \(plan.feedForwardExpertsRecipe.training.steps) steps with \(grouped(try run(plan.feedForwardExpertsID(first)).trainedParameters)) trainable parameters, scores \(Self.number(mixLoRA.average))%, \(points(gap)) \(side(gap)) tinymixer's default LoRA-Mixer and \(points(mixLoRA.average - shared.average)) \(side(mixLoRA.average - shared.average)) the shared LoRA of the same steps."
      )
    }
    let gap = standard.average - expert.average
    found.append(
      "tinymixer's default LoRA-Mixer (\(defaultRecipe)) scores \(Self.number(standard.average))%, \(points(gap)) \(side(gap)) the single-task experts "
        + (abs(gap) <= 0.01 ? "(within a point, as the paper reports)" : "(more than a point away)")
        + " and \(points(standard.average - shared.average)) \(side(standard.average - shared.average)) the shared LoRA."
    )
    found.append(try blendingFinding(paper: paper, expert: expert, paperRun: paperRun))
    found.append(try whatIsLeftFinding(standard, expert: expert))
    found.append(
      "Specialisation: with the default router each task's own expert gets \(percent(diagonal(defaultRun))) of its tokens' first choices and a mean weight of \(Self.number(ownWeight(defaultRun)))%; with the paper's per-token router, \(percent(diagonal(paperRun))) and \(Self.number(ownWeight(paperRun)))%; without a routing loss (default router) \(percent(diagonal(try ablation("no routing loss"))))."
    )
    found.append(try countingFinding(defaultRun))
    let sharpen = try ablation("RSL sharpen").meanAccuracy(tasks)
    found.append(
      "Entropy sign: with the default router, RSL as printed (`spread`) scores \(Self.number(defaultRun.meanAccuracy(tasks)))% and as described (`sharpen`) \(Self.number(sharpen))% (seed \(first))."
    )
    if let low = efficiency.rsl.first, let lowAux = efficiency.aux.first,
      let high = efficiency.rsl.last, let highAux = efficiency.aux.last
    {
      found.append(
        "Data efficiency: with \(grouped(plan.routerExampleCounts.first!)) router examples RSL is \(points(low - lowAux)) \(side(low - lowAux)) the balance loss; with \(grouped(plan.routerExampleCounts.last!)), \(points(high - highAux)) \(side(high - highAux)). "
          + ((low - lowAux) > (high - highAux) + 0.005
            ? "RSL helps most with little router data, as the paper's Table 9 suggests."
            : "RSL does not help most with little router data here, unlike in the paper's Table 9.")
          + (efficiency.lowSpread > abs(low - lowAux)
            ? " But at \(grouped(plan.routerExampleCounts.first!)) the seeds' standard deviation is up to \(points(efficiency.lowSpread)), more than the difference: the seeds do not settle it."
            : "")
      )
    }
    if let bestK = byK.indices.max(by: { byK[$0] < byK[$1] }) {
      found.append(
        "Top-k: the best inference k is \(bestK + 1) (\(Self.number(byK[bestK]))%); the paper finds k = 3 best of its 7 experts."
      )
    }
    return found
  }

  /// MoLE against LoRA-Mixer: a gate per layer against a router per projection and token.
  func layerGateFinding(_ gates: Scores, mixer: Scores, expert: Scores) -> String {
    let gap = gates.average - mixer.average
    return
      "MoLE, one gate per decoder layer reading the experts' outputs, scores \(Self.number(gates.average))%: \(points(gap)) \(side(gap)) tinymixer's default LoRA-Mixer, which routes every projection by its input, and \(points(gates.average - expert.average)) \(side(gates.average - expert.average)) the experts."
  }

  /// What the prompt's words alone decide, beside the shared LoRA.
  func wordsFinding(_ words: Scores, shared: Scores) -> String {
    let byWords = tasks.indices.filter { words.perTask[$0][0] >= 0.95 }
    func list(_ indices: [Int], _ scores: Scores) -> String {
      indices.map {
        "\(tasks[$0]) \(Self.number(Report.meanAndDeviation(scores.perTask[$0]).mean))%"
      }
      .joined(separator: ", ")
    }
    let decided =
      byWords.isEmpty
      ? "no task is decided by its words alone"
      : "the words alone decide \(list(byWords, words)), where the shared LoRA scores \(list(byWords, shared))"
    return
      "A bag of words (naive Bayes on each prompt's words, fitted on the task's training split, no model and no word order) scores \(Self.number(words.average))% on average; \(decided). Every other task needs more than which words occur (their order, negation, agreement)."
  }

  /// LoRAHub against the experts, and what weights its search found.
  func loraHubFinding(_ hub: Scores, expert: Scores) throws -> String {
    let composition = try run(plan.loraHubID(first)).composition ?? [:]
    let own = tasks.indices.compactMap { index in composition[tasks[index]].map { abs($0[index]) } }
    let others = tasks.indices.flatMap { index in
      (composition[tasks[index]] ?? []).enumerated().filter { $0.offset != index }.map {
        abs($0.element)
      }
    }
    let unmoved = composition.values.count { $0.allSatisfy { $0 == 0 } }
    func mean(_ values: [Double]) -> String {
      String(format: "%.2f", values.reduce(0, +) / Double(max(1, values.count)))
    }
    let gap = hub.average - expert.average
    return
      "LoRAHub, told each task and given \(LoRAHubRecipe().examples) of its examples, scores \(Self.number(hub.average))%, \(points(gap)) \(side(gap)) the experts; its search (seed \(first)) gives the task's own expert a mean |w| of \(mean(own)) and the others \(mean(others)), \(unmoved == 0 ? "and finds a composition better than the base for every task" : "and in \(unmoved) of \(tasks.count) tasks finds nothing better than the base (every w still 0)") within its \(LoRAHubRecipe().budget) evaluations. Composing matrices multiplies them: with weight w on one expert alone the update is w² times that expert's (so −1 serves as well as 1), and two experts add cross terms w_i w_j B_i A_j that neither was trained with."
  }

  /// Why the paper's per-token router falls short here, from the blending table.
  func blendingFinding(paper: Scores, expert: Scores, paperRun: RunRecord) throws -> String {
    let blends = Dictionary(uniqueKeysWithValues: try blendRuns().map { ($0.id, $0.run) })
    func blend(_ id: String) -> String { Self.number(blends[id]!.meanAccuracy(tasks)) }
    let layerZero = blends["uniform-layer0"]!.meanAccuracy(tasks)
    let lastLayer = blends["uniform-layer\(layerCount - 1)"]!.meanAccuracy(tasks)
    let gap = points(paper.average - expert.average)
    let weight = Self.number(ownWeight(paperRun))
    return
      "Why the paper's per-token router falls short here (\(Self.number(paper.average))%, \(gap) below the experts): the experts tolerate little blending. With the routers bypassed, the own expert alone scores \(blend("own-1"))%, own 0.9 with the rest mixed in \(blend("own-0.9"))%, own 0.75 \(blend("own-0.75"))%, own 0.5 \(blend("own-0.5"))%, uniform weights \(blend("uniform"))%; blending only layer 0 costs more (\(Self.number(layerZero))%) than blending only the last layer (\(Self.number(lastLayer))%). So a mixture needs about 0.9 of the weight on the right expert at every site, the first layer above all. A per-token router cannot get there: at layer 0 its q, k and v sites see only the token's own embedding, and `<bos>`, `<sep>`, the answer words and many prompt words occur in several tasks, so it gives the own expert a mean weight of \(weight)% (seed \(first)). Routing each token by the mean of its site's router logits over the sequence so far lets a whole prompt vote, causally, and the own expert's weight rises towards where the experts work."
  }

  /// The balance term counted per sequence (the default) against per token, on the first
  /// seed.
  func countingFinding(_ defaultRun: RunRecord) throws -> String {
    let perSequence = defaultRun.meanAccuracy(tasks)
    let perToken = try ablation(plan.tokenCounting.0).meanAccuracy(tasks)
    return
      "Balance counting (seed \(first)): counted per sequence (the default) the mixture scores \(Self.number(perSequence))%; counted per token, as the paper's formula does, \(Self.number(perToken))%. One seed rarely shows the difference: counting tokens makes the experts of the tasks with short prompts (toy-cola's average 5 words, toy-humaneval's 20) look underused by a router that sends each task to its own expert, and the term draws other tasks' tokens to them; over three seeds that lost toy-cola on one seed, with 2,000 router examples and again with 4,000 (lesson 07)."
  }

  /// Where the default still falls short, task by task, and what `<bos>` costs any causal
  /// router (from the blending table).
  func whatIsLeftFinding(_ standard: Scores, expert: Scores) throws -> String {
    let gaps = tasks.indices.map { index in
      (
        task: tasks[index],
        gap: Report.meanAndDeviation(standard.perTask[index]).mean
          - Report.meanAndDeviation(expert.perTask[index]).mean
      )
    }.sorted { $0.gap < $1.gap }
    let worstGaps = gaps.prefix(2).map { "\($0.task) \(points($0.gap)) \(side($0.gap))" }
    let rest = gaps.dropFirst(2).map(\.gap).min() ?? 0
    let bos = try run(plan.blendID("uniform-bos"))
    let scores: [(task: String, accuracy: Double)] = tasks.map { ($0, bos.accuracy[$0] ?? 0) }
    let worst = scores.min { $0.accuracy < $1.accuracy }!
    let none = try run(plan.blendID("none-bos"))
    return
      "What is left: the default's shortfall is uneven, \(worstGaps.joined(separator: " and ")) their experts, every other task within \(points(rest)); toy-cola and toy-sst2 are the two tasks whose prompts are plain English sentences, and a seed's routers sometimes send one task's tokens to the other's expert (the activation table). `<bos>` adds a floor no causal router can lift: it opens every sequence of every task, and every later token attends to its keys and values. Blending the experts at `<bos>` alone, the own expert everywhere else, scores \(Self.number(bos.meanAccuracy(tasks)))% (\(worst.task) \(Self.number(worst.accuracy))%), and leaving it with no expert is no better (\(Self.number(none.meanAccuracy(tasks)))%, \(worst.task) \(Self.number(none.accuracy[worst.task] ?? .nan))%): the experts lean on their own version of that first position. The default routes `<bos>` by its own logits, one learned blend for all tasks. Experts trained to leave `<bos>` untouched, or attention that reads `<bos>` through the reader's own routing, would remove that floor; neither is the paper's method, and neither is built here."
  }

  /// `4.0 points` for a difference of shares, whichever its sign.
  func points(_ value: Double) -> String { String(format: "%.1f points", 100 * abs(value)) }

  /// Where a difference puts the first thing against the second.
  func side(_ value: Double) -> String { value >= 0 ? "above" : "below" }
}
