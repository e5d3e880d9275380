// Lesson 08: reading the reproduction's results.
//
// `tinymixer reproduce` keeps every number it measures in `results.json`, one record per
// run: the run's id (its whole configuration), its seed, the command that made it, and its
// test accuracy on each task. This program reads the committed report's results and
// rebuilds a few of the report's numbers from them, the way the report does.

import Foundation

/// The parts of one run's record this lesson reads.
struct Run: Decodable {
  let id: String
  let seed: Int
  let command: String
  let equivalent: String
  let accuracy: [String: Double]
}

/// The parts of `results.json` this lesson reads.
struct Results: Decodable {
  let plan: String
  let tasks: [String]
  let runs: [String: Run]
}

// The report of the clone run from (its root), else of the clone this was built from.
let reportPath = "Tutorials/08-reproducing-the-paper/report"
let folder =
  FileManager.default.fileExists(atPath: reportPath)
  ? URL(fileURLWithPath: reportPath)
  : URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("report")
let results = try JSONDecoder().decode(
  Results.self, from: Data(contentsOf: folder.appendingPathComponent("results.json")))

print("Step 1: what was run")
let kinds = Dictionary(grouping: results.runs.keys) { $0.split(separator: "/")[0] }
for kind in kinds.keys.sorted() {
  print("  \(kind): \(kinds[kind]!.count) run\(kinds[kind]!.count == 1 ? "" : "s")")
}

print("\nStep 2: one cell of the main table, from its three runs")
/// Mean and sample standard deviation, as the report computes them.
func meanAndDeviation(_ values: [Double]) -> (Double, Double) {
  let mean = values.reduce(0, +) / Double(values.count)
  let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count - 1)
  return (mean, variance.squareRoot())
}
let mixer = { (seed: Int) in
  "mix/all/content-mean/hardsoft-k2/rsl-spread-a0.1-l0.01-per-sequence/n4000/seed\(seed)"
}
let cell = (0...2).map { results.runs[mixer($0)]!.accuracy["toy-gsm8k"]! }
for (seed, value) in cell.enumerated() {
  print(String(format: "  %@: %.1f%%", mixer(seed), 100 * value))
}
let (mean, deviation) = meanAndDeviation(cell)
print(String(format: "  LoRA-Mixer on toy-gsm8k: %.1f ± %.1f", 100 * mean, 100 * deviation))

print("\nStep 3: the mean over tasks, method by method (seed 0)")
let methods = [
  ("the frozen base", { (_: String) in "base" }),
  ("a bag of words", { (_: String) in "bag-of-words" }),
  ("single-task experts", { (task: String) in "expert/\(task)/seed0" }),
  ("one shared LoRA", { (_: String) in "shared/seed0" }),
  ("shared, experts' steps", { (_: String) in "shared-all-steps/seed0" }),
  ("LoRAHub", { (_: String) in "lorahub/seed0" }),
  (
    "LoRA-Mixer, per-token",
    { (_: String) in "mix/all/token/hardsoft-k2/rsl-spread-a0.01-l0.01/n2000/seed0" }
  ),
  ("LoRA-Mixer, default", { (_: String) in mixer(0) }),
]
for (name, id) in methods {
  let scores = results.tasks.map { results.runs[id($0)]!.accuracy[$0]! }
  let mean = scores.reduce(0, +) / Double(scores.count)
  print(
    String(
      format: "  %@ %.1f%%", name.padding(toLength: 26, withPad: " ", startingAt: 0), 100 * mean))
}

print("\nStep 4: where a number comes from")
let run = results.runs[mixer(1)]!
print("  \(run.id) was made by `\(run.command)` with seed \(run.seed);")
print("  the same mixture alone: \(run.equivalent)")
