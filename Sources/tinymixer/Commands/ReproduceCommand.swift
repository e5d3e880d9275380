import Experiments
import Foundation
import Kernels
import LoRAMixer
import SafeTensors
import ToyTasks
import Training

/// `tinymixer reproduce`: every experiment of Tutorials/the-paper.md §7 on the toy tasks,
/// into a report folder (report.md, SVG figures, results.json), resumable.
enum ReproduceCommand: Command {
  static let name = "reproduce"
  static let summary =
    "regenerate the paper's tables and figures on the toy tasks (report.md, SVGs, results.json)"
  static let synopsis =
    "tinymixer reproduce [--quick | --plan full|extended|quick|tiny] [--architecture llama|mamba] [--out DIR] [--overwrite | --report-only | --only RUN] [--threads N] [--workers N] [--base DIR] [--datasets DIR]"
  static let options = [
    Option(
      name: "quick", valueName: nil,
      help: "one seed and cut budgets: a complete report in a few minutes (--plan quick)"),
    Option(
      name: "plan", valueName: "NAME",
      help:
        "full (3 seeds, the findings' runs), extended (full and the data-efficiency and routing-loss tables over every seed, every ablation, every seed of the long shared LoRA; it continues a full reproduction's folder), quick, or tiny (a few steps of each run, for tests) (default: full)"
    ),
    Option(
      name: "out", valueName: "DIR",
      help:
        "the report folder; a rerun continues what it holds (default: runs/reproduce, or runs/reproduce-quick)"
    ),
    Option(
      name: "report-only", valueName: nil,
      help:
        "rewrite report.md and the figures from the folder's results.json, running nothing (it must be complete)"
    ),
    Option(
      name: "only", valueName: "RUN",
      help:
        "make only the run RUN of the plan (and the runs it needs: the experts, the runs it follows), then print its accuracy; the report is written once every run is done"
    ),
    .overwrite, .threads,
    Option(
      name: "workers", valueName: "N",
      help:
        "runs trained at once, each in its own process with threads/N threads (default: --threads, so one thread each)"
    ),
    Option(
      name: "run-job", valueName: "ID",
      help: "run the one run ID of the folder's plan (what each worker does; needs --job-output)"),
    Option(
      name: "job-output", valueName: "FILE",
      help: "with --run-job: where to write the runs made, for the process that started it"),
    Project.baseOption, Project.architectureOption, Locations.datasetsOption,
  ]

  static func run(_ arguments: Arguments) throws -> Int32 {
    try arguments.expectPositionals(0, 0, "")
    let planName = arguments.string("plan") ?? (arguments.has("quick") ? "quick" : "full")
    guard let named = ReproducePlan.named(planName),
      !arguments.has("quick") || planName == "quick"
    else {
      throw ToolError.usage(
        "--plan: expected full, extended, quick or tiny (and --quick only with quick), got '\(planName)'"
      )
    }
    // On a Mamba the plan keeps its main table, and its report folder sits inside the
    // Llama's, whose report then shows that table too.
    let architecture = try arguments.choice("architecture", default: Architecture.llama)
    let plan = named.on(architecture)
    let outName =
      arguments.string("out")
      ?? (named == .full ? "runs/reproduce" : "runs/reproduce-\(plan.name)")
      + (architecture == .llama ? "" : "/\(architecture.rawValue)")
    let out = URL(fileURLWithPath: outName)
    if arguments.has("report-only") && arguments.has("overwrite") {
      throw ToolError.usage("--report-only keeps the results that --overwrite would delete")
    }
    let only = arguments.string("only")
    if only != nil && arguments.has("report-only") {
      throw ToolError.usage("--only makes a run; --report-only makes none")
    }
    if let id = arguments.string("run-job") { return try runWorker(id, plan, outName, arguments) }
    try arguments.claim(out)
    if arguments.has("overwrite") {
      for name in ["results.json", "experts"] {
        try? FileManager.default.removeItem(at: out.appendingPathComponent(name))
      }
    }
    var results = try Results.load(from: out)
    if let found = results {
      // A plan continues its own folder, and the extended plan a full one (every run of the
      // full plan is one of its runs); --report-only rewrites a report as it was made.
      guard plan.contains(found.plan), found.baseArchitecture == architecture,
        found.plan == plan.name || !arguments.has("report-only")
      else {
        throw ToolError.usage(
          "\(out.path) holds a '\(found.plan)' reproduction on a \(found.baseArchitecture.rawValue) base, not '\(plan.name)' on a \(architecture.rawValue); choose another --out or --architecture, or pass --overwrite"
        )
      }
      if found.plan != plan.name {
        print(
          "\(out.path) holds a '\(found.plan)' reproduction: continued as '\(plan.name)', which has all its runs"
        )
        results?.plan = plan.name
      }
    }
    let started = Date()
    if arguments.has("report-only") {
      guard let results else {
        throw ToolError.usage(
          "--report-only: \(out.path) holds no results.json to rewrite the report from")
      }
      try Report(results: results, plan: plan).write(to: out)
      print("report rewritten in \(out.appendingPathComponent("report.md").path)")
      return 0
    }
    let project = try Project(arguments)
    let (model, baseFolder, _) = try project.loadBase(arguments)
    guard Architecture(of: model) == architecture else {
      throw ToolError.usage(
        "--base \(baseFolder.path) is a \(Architecture(of: model).rawValue), not a \(architecture.rawValue) (--architecture)"
      )
    }
    if let found = results, found.base != baseFolder.path {
      throw ToolError.usage(
        "\(out.path) was made on the base \(found.base ?? "?"), not \(baseFolder.path); pass --overwrite to start again"
      )
    }
    if results == nil {
      results = Results(
        plan: plan.name, base: baseFolder.path, architecture: architecture,
        tasks: ToyTask.all.map(\.name), baseParameters: model.parameterCount)
    }
    let reproduction = Reproduction(
      project: project, model: model, baseFolder: baseFolder, plan: plan, folderName: outName,
      results: results!)
    Interruption.install()
    let pending = try only.map { try reproduction.jobs(toMake: $0) } ?? reproduction.pendingJobs()
    if let only { print("\(only): \(pending.count) run(s) to make, itself and what it needs") }
    try runPending(
      pending, into: reproduction, arguments,
      common: [
        "--plan", plan.name, "--architecture", architecture.rawValue, "--out", outName,
        "--base", baseFolder.path, "--datasets", project.datasets.path,
      ])
    if Interruption.isRequested {
      printError(
        "interrupted; the finished runs are in \(out.path): run the same command to continue")
      return 130
    }
    if let only, !reproduction.unfinishedJobs().isEmpty {
      let accuracy = reproduction.results.runs[only]?.accuracy ?? [:]
      for task in ToyTask.all {
        if let value = accuracy[task.name] { print("\(only) on \(task.name): \(percent(value))") }
      }
      print(
        "\(only) is in \(out.appendingPathComponent("results.json").path); report.md is written once every run of the plan is (the same command without --only)"
      )
      return 0
    }
    try Report(results: reproduction.results, plan: plan).write(to: out)
    print(
      "report written to \(out.appendingPathComponent("report.md").path) (with its figures and results.json) in \(formatDuration(Date().timeIntervalSince(started)))"
    )
    return 0
  }

  /// Runs the `pending` jobs: in this process, or in `--workers` worker processes of
  /// `threads / workers` threads each, given the `common` arguments besides their job.
  static func runPending(
    _ pending: [Reproduction.Job], into reproduction: Reproduction, _ arguments: Arguments,
    common: [String]
  ) throws {
    let threads = Parallelism.threadCount
    let workers = min(
      try arguments.integer("workers", default: threads, in: 1...threads), pending.count)
    guard workers > 1 else {
      return try reproduction.run(pending) { Interruption.isRequested }
    }
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent(
      "tinymixer-reproduce-\(ProcessInfo.processInfo.processIdentifier)")
    print(
      "\(workers) workers of \(threads / workers) thread(s) each; their logs in \(scratch.path)")
    try Workers(
      count: workers, threadsEach: threads / workers, commonArguments: common, scratch: scratch
    ).run(pending, into: reproduction) { Interruption.isRequested }
  }

  /// A worker of `--workers`: runs the run `id` in the folder `out` (whose lock the process
  /// that started it holds) and writes the runs it made to `--job-output`.
  static func runWorker(
    _ id: String, _ plan: ReproducePlan, _ outName: String, _ arguments: Arguments
  ) throws -> Int32 {
    let out = URL(fileURLWithPath: outName)
    guard let output = arguments.string("job-output") else {
      throw ToolError.usage("--run-job needs --job-output FILE")
    }
    guard let results = try Results.load(from: out), results.plan == plan.name,
      results.baseArchitecture == plan.architecture
    else {
      throw ToolError.usage("--run-job: \(out.path) holds no '\(plan.name)' reproduction")
    }
    let project = try Project(arguments)
    let (model, baseFolder, _) = try project.loadBase(arguments)
    let reproduction = Reproduction(
      project: project, model: model, baseFolder: baseFolder, plan: plan,
      folderName: outName, results: results)
    let runs = try reproduction.runOnly(id)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    try writeAtomically(try encoder.encode(runs), to: URL(fileURLWithPath: output))
    return 0
  }
}
