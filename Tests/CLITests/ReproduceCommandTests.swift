import Foundation
import Testing

#if canImport(FoundationXML)
  import FoundationXML
#endif

/// Runs `tinymixer reproduce --plan tiny` into a fresh folder with `threads` (and as many
/// worker processes, one thread each).
private func reproduceTiny(threads: String, into folder: URL) throws -> ProcessResult {
  try runProduct(
    "tinymixer",
    [
      "reproduce", "--plan", "tiny", "--base", tinyBase, "--threads", threads, "--out",
      folder.path, "--datasets", datasetsFolder,
    ])
}

/// `results.json` without the wall-clock times, which differ from run to run, and with the
/// folder's own name (in the recorded commands) replaced.
private func resultsWithoutTimes(_ folder: URL) throws -> String {
  let text = try String(contentsOf: folder.appendingPathComponent("results.json"), encoding: .utf8)
  return text.split(separator: "\n").filter { !$0.contains("\"seconds\"") }.joined(
    separator: "\n"
  ).replacingOccurrences(
    of: folder.path.replacingOccurrences(of: "/", with: "\\/"), with: "<report>")
}

@Test func reproduceWritesACompleteReportTheSameInOneProcessAndInTwoWorkersAndResumes() throws {
  let folders = (1...2).map { _ in
    FileManager.default.temporaryDirectory.appendingPathComponent(
      "reproduce-\(UUID().uuidString)")
  }
  defer { for folder in folders { try? FileManager.default.removeItem(at: folder) } }
  for (folder, threads) in zip(folders, ["1", "2"]) {
    let run = try reproduceTiny(threads: threads, into: folder)
    #expect(run.status == 0, "\(run.error)")
    #expect(run.output.contains("report written to"))
    #expect(run.output.contains("2 workers of 1 thread(s) each") == (threads == "2"))
  }
  #expect(try resultsWithoutTimes(folders[0]) == resultsWithoutTimes(folders[1]))

  // The report: every section, numbers with their spread over the two seeds, and figures
  // that parse as XML and carry a title, axis labels and a legend.
  let report = try String(
    contentsOf: folders[0].appendingPathComponent("report.md"), encoding: .utf8)
  for section in [
    "## Main table", "## Trainable parameters", "## How much blending the experts tolerate",
    "| MoLE (one gate per layer", "| MixLoRA (top-2 of 6 LoRA experts",
    "MoLE's gates (one per layer)",
    "## Cross-model transfer", "| the same base pretrained further: the mixer |",
    "## Routing losses compared", "| balance + router z-loss 0.001 (ST-MoE) |",
    "| entropy only, sharpen |",
    "## Global expert load", "## Per-task expert activation",
    "## The own expert's weight, layer by layer", "## Router data efficiency",
    "## Top-k at inference", "## Ablations", "## What was found", "## Runs", " ± ",
    "tinymixer mix toy-sst2", "per-token router", "uniform at layer 0 only",
  ] {
    #expect(report.contains(section), "report.md lacks '\(section)'")
  }
  for figure in [
    "global-load.svg", "activation-rsl.svg", "activation-paper.svg", "activation-none.svg",
    "data-efficiency.svg",
    "top-k.svg", "loss-experts.svg", "loss-routers.svg",
  ] {
    let data = try Data(contentsOf: folders[0].appendingPathComponent(figure))
    #expect(report.contains("(\(figure))"), "report.md does not show \(figure)")
    #if canImport(FoundationXML) || os(macOS)
      #expect(XMLParser(data: data).parse(), "\(figure) is not well-formed XML")
    #endif
    let svg = String(decoding: data, as: UTF8.self)
    #expect(svg.contains("font-weight=\"bold\"") && svg.contains("rotate(-90)"), "\(figure)")
  }

  // A rerun finds every run done and only rewrites the report.
  let again = try reproduceTiny(threads: "2", into: folders[0])
  #expect(again.status == 0, "\(again.error)")
  #expect(again.output.contains("; 0 to run"), "\(again.output)")
  #expect(try resultsWithoutTimes(folders[0]) == resultsWithoutTimes(folders[1]))

  // Another plan's folder is refused, not mixed.
  let mixed = try runProduct(
    "tinymixer",
    [
      "reproduce", "--quick", "--base", tinyBase, "--out", folders[0].path, "--datasets",
      datasetsFolder,
    ])
  #expect(mixed.status == 2)
  #expect(mixed.error.contains("holds a 'tiny' reproduction on a llama base, not 'quick'"))

  // A run that no other command makes names `reproduce --only` with its run, and that
  // command, in a fresh folder, makes it alone (with the experts it reads) and the same.
  func runs(_ folder: URL) throws -> [String: [String: Any]] {
    let data = try Data(contentsOf: folder.appendingPathComponent("results.json"))
    let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
    return json["runs"] as! [String: [String: Any]]
  }
  let full = try runs(folders[0])
  let mole = try #require(full["mole/seed0"])
  #expect(
    (mole["equivalent"] as? String)?.hasPrefix(
      "tinymixer reproduce --plan tiny --only mole/seed0  # MoLE, a gate per decoder layer")
      == true,
    "\(mole["equivalent"] ?? "")")
  #expect(
    (full["transfer/further/base"]?["equivalent"] as? String)?.hasPrefix(
      "tinymixer reproduce --plan tiny --only transfer/further/mixer  # ") == true)
  let alone = FileManager.default.temporaryDirectory.appendingPathComponent(
    "reproduce-only-\(UUID().uuidString)")
  defer { try? FileManager.default.removeItem(at: alone) }
  let only = try runProduct(
    "tinymixer",
    [
      "reproduce", "--plan", "tiny", "--only", "mole/seed0", "--base", tinyBase, "--out",
      alone.path, "--datasets", datasetsFolder,
    ])
  #expect(only.status == 0, "\(only.error)")
  #expect(only.output.contains("mole/seed0 on toy-sst2: "), "\(only.output)")
  #expect(!FileManager.default.fileExists(atPath: alone.appendingPathComponent("report.md").path))
  let made = try runs(alone)
  #expect(Set(made.keys) == Set(full.keys.filter { $0.hasPrefix("expert/") || $0 == "mole/seed0" }))
  #expect(
    made["mole/seed0"]?["accuracy"] as? [String: Double] == mole["accuracy"] as? [String: Double])
  let unknown = try runProduct(
    "tinymixer",
    [
      "reproduce", "--plan", "tiny", "--only", "mole/seed9", "--base", tinyBase, "--out",
      alone.path, "--datasets", datasetsFolder,
    ])
  #expect(unknown.status == 2)
  #expect(unknown.error.contains("--only: the plan 'tiny' has no run 'mole/seed9'"))
}

@Test func theCommittedReportIsWhatTheCodeWritesFromItsResults() throws {
  let committed = packageRoot.appendingPathComponent("Tutorials/08-reproducing-the-paper/report")
  let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
    "report-\(UUID().uuidString)")
  defer { try? FileManager.default.removeItem(at: folder) }
  try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
  let results = try Data(contentsOf: committed.appendingPathComponent("results.json"))
  try results.write(to: folder.appendingPathComponent("results.json"))
  // The plan that made it (the committed report is the extended plan's).
  var object = try #require(try JSONSerialization.jsonObject(with: results) as? [String: Any])
  let plan = try #require(object["plan"] as? String)
  // The Mamba's reproduction, whose main table the Llama's report shows.
  let mamba = folder.appendingPathComponent("mamba")
  try FileManager.default.createDirectory(at: mamba, withIntermediateDirectories: true)
  try Data(contentsOf: committed.appendingPathComponent("mamba/results.json")).write(
    to: mamba.appendingPathComponent("results.json"))

  let run = try runProduct(
    "tinymixer",
    [
      "reproduce", "--report-only", "--architecture", "mamba", "--out", mamba.path,
    ])
  #expect(run.status == 0, "\(run.error)")
  let llama = try runProduct(
    "tinymixer", ["reproduce", "--report-only", "--plan", plan, "--out", folder.path])
  #expect(llama.status == 0, "\(llama.error)")
  func files(_ root: URL) -> [String] {
    (FileManager.default.subpaths(atPath: root.path) ?? []).filter { !$0.hasSuffix("mamba") }
      .sorted()
  }
  let written = files(folder)
  #expect(written == files(committed))
  #expect(written.contains("mamba/report.md"))
  for name in written {
    #expect(
      try Data(contentsOf: folder.appendingPathComponent(name))
        == Data(contentsOf: committed.appendingPathComponent(name)),
      "\(name) differs from what the code writes: run `tinymixer reproduce --report-only --architecture mamba --out Tutorials/08-reproducing-the-paper/report/mamba`, then the same with `--plan \(plan)` instead of `--architecture mamba`, without `/mamba`"
    )
  }

  // Results missing a run are named, not drawn.
  var runs = try #require(object["runs"] as? [String: Any])
  runs["shared/seed1"] = nil
  object["runs"] = runs
  try JSONSerialization.data(withJSONObject: object).write(
    to: folder.appendingPathComponent("results.json"))
  let incomplete = try runProduct(
    "tinymixer", ["reproduce", "--report-only", "--plan", plan, "--out", folder.path])
  #expect(incomplete.status == 1)
  #expect(
    incomplete.error.contains("results.json has no run 'shared/seed1'"), "\(incomplete.error)")
}

@Test func reproduceOnAMambaRunsTheMainTableAndRefusesAnotherArchitecture() throws {
  let root = FileManager.default.temporaryDirectory.appendingPathComponent(
    "reproduce-mamba-\(UUID().uuidString)")
  defer { try? FileManager.default.removeItem(at: root) }
  let base = try pretrainTinyMamba(into: root.appendingPathComponent("base"))
  let out = root.appendingPathComponent("report/mamba")
  func reproduce(_ base: String) throws -> ProcessResult {
    try runProduct(
      "tinymixer",
      [
        "reproduce", "--plan", "tiny", "--architecture", "mamba", "--base", base, "--out",
        out.path, "--datasets", datasetsFolder,
      ])
  }
  // A Llama under --architecture mamba is refused before anything runs.
  let llama = try reproduce(tinyBase)
  #expect(llama.status == 2)
  #expect(llama.error.contains("is a llama, not a mamba"), "\(llama.error)")

  let run = try reproduce(base.path)
  #expect(run.status == 0, "\(run.error)")
  let report = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
  for part in [
    "on a Mamba base", "## Main table", "## What was found", "On the Mamba",
    "## Trainable parameters", "## Runs", "--architecture mamba", "LoRAHub", "| MoLE",
  ] {
    #expect(report.contains(part), "report.md lacks '\(part)'")
  }
  // MixLoRA has no row: a Mamba has no feed-forward block to route.
  #expect(!report.contains("| MixLoRA"))
  // The main table alone: no blends, no ablations, no data efficiency.
  for section in ["## How much blending", "## Ablations", "## Router data efficiency"] {
    #expect(!report.contains(section), "report.md has '\(section)'")
  }
  let results = try String(contentsOf: out.appendingPathComponent("results.json"), encoding: .utf8)
  #expect(results.contains("\"architecture\" : \"mamba\""))

  // The same folder is not continued as a Llama reproduction.
  let mixed = try runProduct(
    "tinymixer",
    [
      "reproduce", "--plan", "tiny", "--base", tinyBase, "--out", out.path, "--datasets",
      datasetsFolder,
    ])
  #expect(mixed.status == 2)
  #expect(mixed.error.contains("on a mamba base, not 'tiny' on a llama"), "\(mixed.error)")
}

@Test func theExtendedPlanContinuesAFullReproductionAndNotTheOtherWayRound() throws {
  let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
    "reproduce-full-\(UUID().uuidString)")
  defer { try? FileManager.default.removeItem(at: folder) }
  try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
  let base = URL(fileURLWithPath: tinyBase).standardizedFileURL.path
  let results: [String: Any] = [
    "plan": "full", "base": base, "tasks": [String](), "baseParameters": 0,
    "runs": [String: Any](),
  ]
  try JSONSerialization.data(withJSONObject: results).write(
    to: folder.appendingPathComponent("results.json"))
  let extended = try runProduct(
    "tinymixer",
    [
      "reproduce", "--plan", "extended", "--only", "base", "--base", tinyBase, "--out",
      folder.path, "--datasets", datasetsFolder,
    ])
  #expect(extended.status == 0, "\(extended.error)")
  #expect(extended.output.contains("continued as 'extended', which has all its runs"))
  let saved =
    try JSONSerialization.jsonObject(
      with: Data(contentsOf: folder.appendingPathComponent("results.json"))) as! [String: Any]
  #expect(saved["plan"] as? String == "extended")
  #expect((saved["runs"] as? [String: Any])?["base"] != nil)
  let full = try runProduct(
    "tinymixer",
    [
      "reproduce", "--base", tinyBase, "--out", folder.path, "--datasets", datasetsFolder,
    ])
  #expect(full.status == 2)
  #expect(full.error.contains("holds a 'extended' reproduction on a llama base, not 'full'"))
}
