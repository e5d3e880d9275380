// Lesson 08: reading the reproduction's results.
//
// `tinymixer reproduce` keeps every number it measures in `results.json`, one record per
// run: the run's id (its whole configuration), its seed, the command that made it, and its
// test accuracy on each task. This program reads the committed report's results with the
// reproduction's own code (the `Experiments` module) and rebuilds a few of the report's
// numbers from them.

import Exercises
import Experiments
import Foundation
import LoRAMixer
import ToyTasks

// `--exercise` checks this lesson's exercise (exercise.swift) instead of running it.
if CommandLine.arguments.contains("--exercise") { exit(checkSpread(meanAndDeviation).report()) }

// The report of the clone run from (its root), else of the clone this was built from.
let folder = packageFolder(
  "Tutorials/08-reproducing-the-paper/report", sourceRoot: Locations.sourceRoot)
guard let results = try Results.load(from: folder) else {
  fatalError("no results.json in \(folder.path)")
}
// The plan that made them names every run.
let plan = ReproducePlan.all.first { $0.name == results.plan }!

print("Step 1: what was run")
let kinds = Dictionary(grouping: results.runs.keys) { $0.split(separator: "/")[0] }
for kind in kinds.keys.sorted() {
  print("  \(kind): \(kinds[kind]!.count) run\(kinds[kind]!.count == 1 ? "" : "s")")
}

print("\nStep 2: one cell of the main table, from its three runs")
let mixer = { (seed: UInt64) in plan.mixerID(MixRecipe(), seed: seed) }
let cell = plan.seeds.map { results.runs[mixer($0)]!.accuracy["toy-gsm8k"]! }
for (seed, value) in zip(plan.seeds, cell) {
  print(String(format: "  %@: %.1f%%", mixer(seed), 100 * value))
}
let (mean, deviation) = Report.meanAndDeviation(cell)
print(String(format: "  LoRA-Mixer on toy-gsm8k: %.1f ± %.1f", 100 * mean, 100 * deviation!))

print("\nStep 3: the mean over tasks, method by method (seed 0)")
let methods: [(String, (ToyTask) -> String)] = [
  ("the frozen base", { _ in "base" }),
  ("a bag of words", { _ in "bag-of-words" }),
  ("single-task experts", { plan.expertID($0) }),
  ("one shared LoRA", { _ in plan.sharedID(0) }),
  ("shared, experts' steps", { _ in plan.sharedID(0, allExpertsSteps: true) }),
  ("LoRAHub", { _ in plan.loraHubID(0) }),
  ("MixLoRA", { _ in plan.feedForwardExpertsID(0) }),
  ("MoLE", { _ in plan.layerGatesID(0) }),
  ("LoRA-Mixer, per-token", { _ in plan.mixerID(MixRecipe.paper, seed: 0) }),
  ("LoRA-Mixer, default", { _ in mixer(0) }),
]
let tasks = results.tasks.map { ToyTask.named($0)! }
for (name, id) in methods {
  let scores = tasks.map { results.runs[id($0)]!.accuracy[$0.name]! }
  let mean = scores.reduce(0, +) / Double(scores.count)
  print(
    String(
      format: "  %@ %.1f%%", name.padding(toLength: 26, withPad: " ", startingAt: 0), 100 * mean))
}

print("\nStep 4: where a number comes from")
let run = results.runs[mixer(1)]!
print("  \(run.id) was made by `\(run.command)` with seed \(run.seed);")
print("  the same mixture alone: \(run.equivalent)")
