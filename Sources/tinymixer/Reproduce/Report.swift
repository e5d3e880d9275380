import Foundation
import SafeTensors
import ToyTasks

/// Writes `report.md` and the SVG figures from a reproduction's results: every number in
/// them is read from `results.json`, and the text says what the numbers show.
struct Report {
  let results: Results
  let plan: ReproducePlan

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
  static func meanAndDeviation(_ values: [Double]) -> (mean: Double, deviation: Double?) {
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

  /// The main table's methods: a name, and the run at a seed for a task.
  var methods: [(name: String, id: (UInt64, String) -> String)] {
    func mixer(_ name: String) -> (UInt64, String) -> String {
      { seed, _ in mainMixerID(name, seed: seed) }
    }
    return [
      ("base model (frozen)", { _, _ in "base" }),
      (
        "single-task LoRA (oracle routing)",
        { _, task in plan.expertID(ToyTask.named(task)!) }
      ),
      (
        "shared LoRA, rank \(plan.sharedRecipe(experts: tasks.count).rank)",
        { seed, _ in plan.sharedID(seed) }
      ),
      ("soft mixture + balance loss", mixer("soft-balance")),
      ("LoRA-Mixer, RSL spread (as printed)", mixer("rsl-spread")),
      ("LoRA-Mixer, RSL sharpen (as described)", mixer("rsl-sharpen")),
    ]
  }

  /// Per-task and mean accuracies of a method over the seeds.
  func scores(_ id: (UInt64, String) -> String) throws -> (
    perTask: [[Double]], mean: [Double]
  ) {
    let perTask = try tasks.map { task in
      try seeds.map { try run(id($0, task)).accuracy[task] ?? .nan }
    }
    let mean = seeds.indices.map { s in perTask.map { $0[s] }.reduce(0, +) / Double(tasks.count) }
    return (perTask, mean)
  }

  // MARK: Writing

  func write(to folder: URL) throws {
    var figures: [(String, String)] = []
    var text = ""
    func line(_ string: String = "") { text += string + "\n" }
    func table(_ header: [String], _ rows: [[String]]) {
      line("| " + header.joined(separator: " | ") + " |")
      line("|" + header.indices.map { $0 == 0 ? " --- |" : " ---: |" }.joined())
      for row in rows { line("| " + row.joined(separator: " | ") + " |") }
      line()
    }
    let seedList =
      (seeds.count == 1 ? "seed " : "seeds ") + seeds.map(String.init).joined(separator: ", ")
    let allSeconds = results.runs.values.reduce(0) { $0 + $1.seconds }

    line("# LoRA-Mixer's mechanics, regenerated on toy tasks")
    line()
    line(
      "Made by `\(plan.command)` (plan `\(plan.name)`: \(seedList); experts \(plan.expertSteps) steps; shared LoRA \(plan.sharedSteps) steps; routers \(plan.routerSteps) steps on \(grouped(plan.mixRecipe().routerExamples)) mixed examples unless said otherwise; \(plan.testExamples) test examples per task). The runs took \(formatDuration(allSeconds)) in all. Every number is in `results.json` with the run that made it, its seed, and the standalone command that trains the same thing; the runs are listed at the end."
    )
    line()

    // Main table.
    let scored = try methods.map { ($0.name, try scores($0.id)) }
    line("## Main table (the paper's Table 2)")
    line()
    line(
      "Test accuracy (%), \(seeds.count == 1 ? "one run" : "mean ± standard deviation over \(seedList)") of the routers and the shared LoRA. The base is one model and the experts are trained once (seed \(plan.expertSeed)) and shared by every seed's routers, so their rows are single runs. Inference routes top-2 for every mixture."
    )
    line()
    // The base and the experts are one run each, the same for every seed: one value.
    table(
      ["method"] + tasks + ["mean"],
      scored.enumerated().map { index, item in
        let cell = { (values: [Double]) in Self.cell(index < 2 ? [values[0]] : values) }
        return [item.0] + item.1.perTask.map(cell) + [cell(item.1.mean)]
      })

    // Parameters.
    let expertParameters = try tasks.map { task in
      try run(plan.expertID(ToyTask.named(task)!))
        .trainedParameters
    }
    let allExperts = expertParameters.reduce(0, +)
    let shared = try run(plan.sharedID(first)).trainedParameters
    let routers = try run(plan.mixerID(plan.mixRecipe(), seed: first))
      .trainedParameters
    let base = results.baseParameters
    line("## Trainable parameters")
    line()
    line(
      "The base has \(grouped(base)) parameters, all frozen. The paper's \"48% of the parameters\" compares what LoRA-Mixer trains with what the other methods train; here are the counts."
    )
    line()
    table(
      ["method", "trained parameters", "share of the shared LoRA's"],
      [
        [
          "one single-task expert", grouped(expertParameters[0]),
          percent(Double(expertParameters[0]) / Double(shared)),
        ],
        [
          "all \(tasks.count) experts (stage 1)", grouped(allExperts),
          percent(Double(allExperts) / Double(shared)),
        ],
        ["shared LoRA", grouped(shared), "100.0%"],
        [
          "LoRA-Mixer routers (stage 2)", grouped(routers),
          percent(Double(routers) / Double(shared)),
        ],
        [
          "LoRA-Mixer, experts and routers", grouped(allExperts + routers),
          percent(Double(allExperts + routers) / Double(shared)),
        ],
      ])

    // Load and activation.
    let rslRun = try run(mainMixerID("rsl-spread", seed: first))
    let sharpenRun = try run(mainMixerID("rsl-sharpen", seed: first))
    let noneRun = try run(plan.mixerID(plan.mixRecipe { $0.loss.kind = .none }, seed: first))
    let loadRuns: [(String, RunRecord)] = [
      ("soft + balance", try run(mainMixerID("soft-balance", seed: first))),
      ("RSL spread", rslRun),
      ("RSL sharpen", sharpenRun),
      ("no routing loss", noneRun),
    ]
    line("## Global expert load (the paper's Figure 3)")
    line()
    line(
      "Each expert's share of the top-2 selections over a mixed evaluation set (\(plan.routingExamples) test examples per task, every token, every site), seed \(first). A perfectly even load is \(percent(1 / Double(tasks.count))) each."
    )
    line()
    table(
      ["mixture"] + tasks + ["balance", "token entropy"],
      loadRuns.map { name, run in
        [name] + (run.load ?? []).map(percent)
          + [
            String(format: "%.3f", run.balance ?? .nan),
            String(format: "%.3f", run.tokenEntropy ?? .nan),
          ]
      })
    figures.append(
      (
        "global-load.svg",
        Chart.bars(
          title: "Global expert load over a mixed evaluation set (seed \(first))",
          categories: shortTasks,
          series: loadRuns.map { ChartSeries(name: $0.0, values: $0.1.load ?? []) },
          yLabel: "share of selections")
      ))
    line("![global load](global-load.svg)")
    line()

    line("## Per-task expert activation, with and without RSL (the paper's Figure 4)")
    line()
    line(
      "For each task's test tokens, the share of first choices each expert gets (mean over sites), seed \(first). A specialised router puts each task on its own expert: the diagonal."
    )
    line()
    for (name, run) in [("with RSL (spread)", rslRun), ("without a routing loss", noneRun)] {
      line("**\(name)**, diagonal mean \(percent(diagonal(run)))")
      line()
      table(
        ["task"] + shortTasks,
        tasks.map { task in [task] + (run.activation?[task] ?? []).map(percent) })
    }
    for (file, name, run) in [
      ("activation-rsl.svg", "with RSL (spread)", rslRun),
      ("activation-none.svg", "without a routing loss", noneRun),
    ] {
      figures.append(
        (
          file,
          Chart.bars(
            title: "Expert activation per task, \(name) (seed \(first))",
            categories: shortTasks,
            series: tasks.enumerated().map { index, expert in
              ChartSeries(
                name: expert, values: tasks.map { run.activation?[$0]?[index] ?? 0 })
            }, yLabel: "share of first choices")
        ))
      line("![activation \(name)](\(file))")
      line()
    }

    // Data efficiency.
    let counts = plan.routerExampleCounts
    let rslByCount = try counts.map {
      count in
      try run(
        plan.mixerID(plan.mixRecipe { $0.routerExamples = count }, seed: first)
      ).meanAccuracy(tasks)
    }
    let auxByCount = try counts.map { count in
      try run(
        plan.mixerID(
          plan.mixRecipe {
            $0.routerExamples = count
            $0.loss.kind = .aux
          }, seed: first)
      ).meanAccuracy(tasks)
    }
    line("## Router data efficiency (the paper's Table 9)")
    line()
    line(
      "Mean test accuracy (%) over the tasks with routers trained on N mixed examples (the same \(plan.routerSteps) steps each), hard-soft top-2, seed \(first)."
    )
    line()
    table(
      ["routing loss"] + counts.map { "N = \(grouped($0))" },
      [
        ["RSL (spread)"] + rslByCount.map { String(format: "%.1f", 100 * $0) },
        ["balance loss only"] + auxByCount.map { String(format: "%.1f", 100 * $0) },
      ])
    figures.append(
      (
        "data-efficiency.svg",
        Chart.lines(
          title: "Router data efficiency (seed \(first))", x: counts.map(Double.init),
          series: [
            ChartSeries(name: "RSL (spread)", values: rslByCount),
            ChartSeries(name: "balance loss", values: auxByCount),
          ], xLabel: "router training examples (log scale)", yLabel: "mean test accuracy",
          logX: true)
      ))
    line("![data efficiency](data-efficiency.svg)")
    line()

    // Top-k.
    let byK = rslRun.accuracyByK ?? []
    line("## Top-k at inference (the paper's Figure 5)")
    line()
    line(
      "The routers of LoRA-Mixer (RSL spread, trained at k = 2, seed \(first)) evaluated with k = 1 to \(tasks.count) experts per token; mean test accuracy (%)."
    )
    line()
    table(
      ["k"] + byK.indices.map { "\($0 + 1)" },
      [["mean accuracy"] + byK.map { String(format: "%.1f", 100 * $0) }])
    figures.append(
      (
        "top-k.svg",
        Chart.lines(
          title: "Experts per token at inference (seed \(first))",
          x: byK.indices.map { Double($0 + 1) },
          series: [ChartSeries(name: "LoRA-Mixer", values: byK)], xLabel: "k (experts per token)",
          yLabel: "mean test accuracy")
      ))
    line("![top-k](top-k.svg)")
    line()

    // Ablations.
    let softRSL = try run(
      plan.mixerID(plan.mixRecipe { $0.routing.mode = .soft }, seed: first))
    let topkRSL = try run(
      plan.mixerID(plan.mixRecipe { $0.routing.mode = .topk }, seed: first))
    let siteRuns = try [SiteChoice.attention, .mlp].map { sites in
      try run(
        plan.mixerID(plan.mixRecipe { $0.targets = sites.targets }, seed: first))
    }
    line("## Ablations the paper lacks")
    line()
    line("Test accuracy (%), seed \(first); the entropy sign over every seed is in the main table.")
    line()
    let ablationRows: [(String, [Double])] = [
      ("hard-soft, RSL spread (LoRA-Mixer)", tasks.map { rslRun.accuracy[$0] ?? .nan }),
      ("hard-soft, RSL sharpen", tasks.map { sharpenRun.accuracy[$0] ?? .nan }),
      ("hard-soft, no routing loss", tasks.map { noneRun.accuracy[$0] ?? .nan }),
      ("soft, RSL spread", tasks.map { softRSL.accuracy[$0] ?? .nan }),
      ("top-k, RSL spread", tasks.map { topkRSL.accuracy[$0] ?? .nan }),
      ("routed at the attention sites only", tasks.map { siteRuns[0].accuracy[$0] ?? .nan }),
      ("routed at the FFN sites only", tasks.map { siteRuns[1].accuracy[$0] ?? .nan }),
    ]
    table(
      ["variant"] + tasks + ["mean"],
      ablationRows.map { name, values in
        [name] + values.map { String(format: "%.1f", 100 * $0) }
          + [String(format: "%.1f", 100 * values.reduce(0, +) / Double(values.count))]
      })

    // Loss curves.
    let expertCurves = try tasks.map { task in
      ChartSeries(name: task, values: try run(plan.expertID(ToyTask.named(task)!)).losses)
    }
    figures.append(
      (
        "loss-experts.svg",
        lossChart(
          "Stage 1: each expert's training loss (seed \(first))", expertCurves,
          steps: plan.expertSteps)
      ))
    figures.append(
      (
        "loss-routers.svg",
        lossChart(
          "Stage 2: the task loss while routers train (seed \(first))",
          loadRuns.map { ChartSeries(name: $0.0, values: $0.1.losses) }, steps: plan.routerSteps)
      ))
    line("## Training curves")
    line()
    line("![expert losses](loss-experts.svg)")
    line()
    line("![router losses](loss-routers.svg)")
    line()

    line("## What was found")
    line()
    for finding in findings(
      scored: scored, rslByCount: rslByCount, auxByCount: auxByCount, byK: byK, rslRun: rslRun,
      noneRun: noneRun)
    {
      line("- " + finding)
    }
    line()

    line("## Runs")
    line()
    line(
      "Every run, its seed, its wall time and the standalone command that trains the same thing.")
    line()
    table(
      ["run", "seed", "seconds", "equivalent command"],
      results.runs.values.sorted { $0.id < $1.id }.map {
        [$0.id, "\($0.seed)", String(format: "%.1f", $0.seconds), "`\($0.equivalent)`"]
      })

    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    for (name, svg) in figures {
      try writeAtomically(Data(svg.utf8), to: folder.appendingPathComponent(name))
    }
    try writeAtomically(Data(text.utf8), to: folder.appendingPathComponent("report.md"))
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

  /// Sentences that compare the numbers with the paper's claims, written from the numbers.
  func findings(
    scored: [(String, (perTask: [[Double]], mean: [Double]))], rslByCount: [Double],
    auxByCount: [Double], byK: [Double], rslRun: RunRecord, noneRun: RunRecord
  ) -> [String] {
    func mean(_ index: Int) -> Double { Self.meanAndDeviation(scored[index].1.mean).mean }
    func points(_ value: Double) -> String { String(format: "%.1f points", 100 * abs(value)) }
    let (base, expert, shared, soft, spread, sharpen) = (
      mean(0), mean(1), mean(2), mean(3), mean(4), mean(5)
    )
    let better = spread >= sharpen ? "spread" : "sharpen"
    let signsTie = abs(spread - sharpen) < 0.005
    let best = max(spread, sharpen)
    var found: [String] = []
    found.append(
      String(
        format:
          "The frozen base scores %.1f%% on average (chance level), the single-task experts %.1f%%, the shared LoRA %.1f%%.",
        100 * base, 100 * expert, 100 * shared))
    let signs =
      "spread \(String(format: "%.1f", 100 * spread))%, sharpen \(String(format: "%.1f", 100 * sharpen))%; the paper's equation is `spread`, its prose `sharpen`"
    found.append(
      signsTie
        ? "Entropy sign: the two signs are indistinguishable on average (\(signs)); with λ = \(plan.mixRecipe().loss.lambda) the entropy term is small beside the task loss, and the load table shows nearly the same routing entropy for both."
        : "Entropy sign: RSL with `\(better)` is better on average (\(signs)). Their routing entropies at seed \(first) are in the load table."
    )
    found.append(
      "LoRA-Mixer (\(better)) is \(points(best - expert)) \(best >= expert ? "above" : "below") the single-task experts on average "
        + (abs(best - expert) <= 0.02
          ? "(within 2 points, as the paper reports)" : "(more than 2 points away)")
        + " and \(points(best - shared)) \(best >= shared ? "above" : "below") the shared LoRA"
        + (best >= shared ? ", as the paper claims." : "; the paper claims it beats it."))
    found.append(
      "The soft mixture with the balance loss scores \(String(format: "%.1f", 100 * soft))%, \(points(best - soft)) \(best >= soft ? "below" : "above") LoRA-Mixer."
    )
    found.append(
      "Specialisation: with RSL each task's own expert gets \(percent(diagonal(rslRun))) of its first choices; without a routing loss \(percent(diagonal(noneRun))). "
        + (diagonal(rslRun) > diagonal(noneRun) + 0.02
          ? "RSL specialises the routers, as the paper's Figure 4 shows."
          : "RSL does not specialise the routers more than no routing loss does here."))
    if let entropy = rslRun.tokenEntropy {
      found.append(
        String(
          format:
            "Routing confidence: the routers of LoRA-Mixer (spread, seed %d) end with a mean per-token routing entropy of %.2f nats, where a uniform choice among %d experts has %.2f; ",
          Int(first), entropy, tasks.count, log(Double(tasks.count)))
          + (entropy > 0.75 * log(Double(tasks.count))
            ? "they stay close to uniform, so most tokens mix a second expert's update into their own expert's at a weight near one half."
            : "they choose confidently."))
    }
    if best < expert - 0.02 {
      let better = scored[spread >= sharpen ? 4 : 5].1.perTask
      let oracle = scored[1].1.perTask
      var gaps: [(task: String, gap: Double)] = []
      for index in tasks.indices {
        let mixture = better[index].reduce(0, +) / Double(seeds.count)
        let alone = oracle[index].reduce(0, +) / Double(seeds.count)
        gaps.append((tasks[index], mixture - alone))
      }
      gaps.sort { $0.gap < $1.gap }
      let largest = gaps.prefix(3).map { "\($0.task) (\(String(format: "%+.1f", 100 * $0.gap)))" }
      found.append(
        "Why LoRA-Mixer falls short of the experts here: the loss is largest on "
          + largest.joined(separator: ", ")
          + " points, and the routing measurements above show routers that, within the \(plan.routerSteps) router steps of this plan, barely prefer each task's own expert. Each expert adapts every projection at scale α/r = \(String(format: "%g", plan.expertRecipe.alpha / Double(plan.expertRecipe.rank))), so a second expert mixed in at a similar weight is a large perturbation. Lesson 08 lists what longer, faster and top-1 router training gave."
      )
    }
    if let low = rslByCount.first, let lowAux = auxByCount.first, let high = rslByCount.last,
      let highAux = auxByCount.last
    {
      found.append(
        "Data efficiency: with \(grouped(plan.routerExampleCounts.first!)) router examples RSL is \(points(low - lowAux)) \(low >= lowAux ? "above" : "below") the balance loss; with \(grouped(plan.routerExampleCounts.last!)), \(points(high - highAux)) \(high >= highAux ? "above" : "below"). "
          + ((low - lowAux) > (high - highAux) + 0.005
            ? "RSL helps most with little router data, as the paper's Table 9 suggests."
            : "The gap does not shrink with more data here, unlike the paper's Table 9."))
    }
    if let bestK = byK.indices.max(by: { byK[$0] < byK[$1] }) {
      found.append(
        "Top-k: the best inference k is \(bestK + 1) (\(String(format: "%.1f", 100 * byK[bestK]))%); the paper finds k = 3 best of its 7 experts."
      )
    }
    return found
  }
}
