import Foundation

/// Runs a reproduction's jobs in worker processes, several at a time.
///
/// A router step is too small to keep two threads busy (on the 2-core AMD EPYC, AVX-512,
/// 1,000 steps over six experts took 158 s on two threads and 153 s on one; lesson 08), so
/// two processes of one thread each do twice the work of one process of two. Each
/// worker is `tinymixer reproduce --run-job ID --job-output FILE` on the same folder: it
/// runs one job and writes the runs it made to FILE; the parent alone writes
/// `results.json`. Runs are bitwise the same on any thread count, so the report does not
/// depend on how many workers made it.
public struct Workers {
  /// How many jobs run at once, and the threads each gets.
  let count: Int
  let threadsEach: Int
  /// The arguments every worker gets besides its job and threads.
  let commonArguments: [String]
  /// Where the workers' records and logs go while they run.
  let scratch: URL

  /// `count` workers of `threadsEach` threads, each started with `commonArguments`, their
  /// records and logs in `scratch`.
  public init(count: Int, threadsEach: Int, commonArguments: [String], scratch: URL) {
    (self.count, self.threadsEach) = (count, threadsEach)
    (self.commonArguments, self.scratch) = (commonArguments, scratch)
  }

  /// A job running in a worker.
  private struct Running {
    var job: Reproduction.Job
    var process: Process
    var output: URL
    var log: URL
    var started: Date
  }

  /// Runs `jobs`, the costliest ready one first (a job needing the experts is ready once
  /// every expert job has finished, and any job once the runs it comes after have), so
  /// that the last jobs are short and no worker idles
  /// long at the end; merges each finished job's runs into `reproduction.results` and saves
  /// them. Stops starting jobs when `stopRequested()`, and lets running ones finish.
  public func run(
    _ jobs: [Reproduction.Job], into reproduction: Reproduction, stopRequested: () -> Bool
  ) throws {
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    try FileManager.default.createDirectory(
      at: reproduction.folder, withIntermediateDirectories: true)
    try reproduction.results.save(to: reproduction.folder)  // what the workers read
    defer { try? FileManager.default.removeItem(at: scratch) }
    var waiting = jobs
    var running: [Running] = []
    var failure: String?
    let started = Date()
    var finished = 0
    while !waiting.isEmpty || !running.isEmpty {
      let expertsPending =
        waiting.contains(where: \.isExpert) || running.contains(where: \.job.isExpert)
      let unfinished = Set(waiting.map(\.id) + running.map(\.job.id))
      func ready(_ job: Reproduction.Job) -> Bool {
        (!job.needsExperts || !expertsPending) && unfinished.isDisjoint(with: job.after)
      }
      while running.count < count, failure == nil, !stopRequested(),
        let next = waiting.indices.filter({ ready(waiting[$0]) })
          .max(by: { waiting[$0].cost < waiting[$1].cost })
      {
        let job = waiting.remove(at: next)
        running.append(try launch(job))
        print(
          "[started \(jobs.count - waiting.count)/\(jobs.count)] \(job.label)  (elapsed \(formatDuration(Date().timeIntervalSince(started))))"
        )
      }
      if stopRequested() || failure != nil { waiting.removeAll() }
      Thread.sleep(forTimeInterval: 0.2)
      for worker in running where !worker.process.isRunning {
        running.removeAll { $0.output == worker.output }
        finished += 1
        let seconds = formatDuration(Date().timeIntervalSince(worker.started))
        guard worker.process.terminationStatus == 0,
          let runs = try? JSONDecoder().decode(
            [String: RunRecord].self, from: Data(contentsOf: worker.output))
        else {
          if stopRequested() { continue }  // Ctrl-C reached the worker too: rerun it next time
          let log = (try? String(contentsOf: worker.log, encoding: .utf8)) ?? ""
          let lastLines = log.split(separator: "\n").suffix(5).joined(separator: "\n")
          failure =
            failure
            ?? "\(worker.job.label) failed (exit \(worker.process.terminationStatus)):\n\(lastLines)"
          continue
        }
        reproduction.results.runs.merge(runs) { _, new in new }
        try reproduction.results.save(to: reproduction.folder)
        // Over the tasks the run measured: an expert is tested on its own task only.
        let mean = runs[worker.job.id].flatMap { run -> String? in
          let measured = reproduction.tasks.map(\.name).filter { run.accuracy[$0] != nil }
          guard !measured.isEmpty else { return nil }
          return ", mean test accuracy \(percent(run.meanAccuracy(measured)))"
        }
        print("[done \(finished)/\(jobs.count)] \(worker.job.label) in \(seconds)\(mean ?? "")")
      }
    }
    if let failure { throw ToolError.failure(failure) }
  }

  /// Starts `job` in a worker process, its output to a log in `scratch`.
  private func launch(_ job: Reproduction.Job) throws -> Running {
    let name = job.id.replacingOccurrences(of: "/", with: "+")
    let output = scratch.appendingPathComponent("\(name).json")
    let log = scratch.appendingPathComponent("\(name).log")
    _ = FileManager.default.createFile(atPath: log.path, contents: nil)
    let process = Process()
    process.executableURL =
      Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
    process.arguments =
      ["reproduce", "--run-job", job.id, "--job-output", output.path]
      + ["--threads", String(threadsEach)] + commonArguments
    let handle = try FileHandle(forWritingTo: log)
    process.standardOutput = handle
    process.standardError = handle
    try process.run()
    try handle.close()  // the worker holds its own copy
    return Running(job: job, process: process, output: output, log: log, started: Date())
  }
}
