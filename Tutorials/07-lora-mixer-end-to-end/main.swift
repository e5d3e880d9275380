// Lesson 07: LoRA-Mixer end to end: two task experts, routers over them, evaluation, and
// where each task's tokens are routed.
// Run: swift run -c release lesson07-lora-mixer-end-to-end   (--quick: a tiny, fast run)

import Autodiff
import Diagrams
import Exercises
import Foundation
import LoRAMixer
import NN
import ToyTasks
import Training

// `--exercise` checks this lesson's exercise (exercise.swift) instead of running it.
if CommandLine.arguments.contains("--exercise") { exit(checkTopKWeights(topKWeights).report()) }
// `--diagram FILE` draws this lesson's picture (mixture.svg) from the real code.
if try mixtureDiagram().writeIfAsked() { exit(0) }

let quick = CommandLine.arguments.contains("--quick")
// ./Datasets and ./Models when run from the clone's root, else those of the clone this was
// built from.
let sourceRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
  .deletingLastPathComponent().deletingLastPathComponent()
let datasets = ToyTask.datasetsFolder(sourceRoot: sourceRoot)
let tasks: [ToyTask] = [.sst2, .cola]
let splits = try ToyTask.all.map { task in
  try Dictionary(
    uniqueKeysWithValues: Split.allCases.map { ($0, try task.load($0, from: datasets)) })
}
let tokenizer = Tokenizer(examples: splits.flatMap { $0.values.flatMap { $0 } })
func examples(_ task: ToyTask, _ split: Split) -> [Example] {
  splits[ToyTask.all.firstIndex { $0.name == task.name }!][split]!
}

// The same recipes as `tinymixer mix`; --quick shrinks everything so the lesson runs in
// seconds (its accuracies then mean nothing).
var base = BaseRecipe()
var expertRecipe = ExpertRecipe.standard
var mixRecipe = MixRecipe()
var cache = BaseRecipe.cacheFolder
var evaluated = 1000
if quick {
  (base.hiddenSize, base.layers, base.heads, base.intermediateSize, base.training.steps) = (
    16, 1, 2, 32, 3
  )
  expertRecipe.training.steps = 4
  mixRecipe.training.steps = 4
  mixRecipe.routerExamples = 64
  evaluated = 20
  cache = FileManager.default.temporaryDirectory.appendingPathComponent(
    "lesson07-\(ProcessInfo.processInfo.processIdentifier)")
}

// Step 1. The frozen base (cached by `tinymixer`), and one expert per task (stage 1).
print("Step 1: the base and one LoRA expert per task")
// The cached base, else the one shipped in Models/, else pretrained (about a minute).
let (model, _, _) = try base.loadOrPretrain(
  tokenizer: tokenizer, tasks: ToyTask.all.map { examples($0, .train) }, cache: cache,
  shipped: packageFolder("Models", sourceRoot: sourceRoot))
var experts: [(name: String, adapters: [String: LoRA])] = []
for task in tasks {
  let (adapters, losses) = try expertRecipe.train(
    model, on: examples(task, .train), tokenizer: tokenizer, seed: 0)
  experts.append(
    (task.name, Dictionary(uniqueKeysWithValues: adapters.map { ($0.path, $0.adapter) })))
  print(String(format: "  %@: %d steps, final loss %.4f", task.name, losses.count, losses.last!))
}

// Step 2. The mixture: a router at every projection, experts frozen (stage 2). Each token
// is routed by the mean of its site's router logits over the sequence so far (`<bos>` left
// out): tinymixer's default, not the paper's per-token router.
print("\nStep 2: routers over the experts")
let mixture = Mixture(model: model, experts: experts, settings: mixRecipe.routing, seed: 0)
let mixed = MixRecipe.mixedExamples(
  tasks.map { examples($0, .train) }, count: mixRecipe.routerExamples, seed: 0)
print(
  "  \(mixture.sites.count) sites; routers \(mixture.routerParameters().reduce(0) { $0 + $1.tensor.count }) numbers, routing by \(mixRecipe.routing.input.rawValue), trained on \(mixed.count) mixed examples without task labels"
)
let every = max(1, mixRecipe.training.steps / 4)
try mixture.train(on: mixed, tokenizer: tokenizer, recipe: mixRecipe, seed: 0) { report in
  if report.step.step % every == 0 {
    print(
      String(format: "  step %4d: task loss %.4f; ", report.step.step, report.task)
        + report.tally.summary(expertNames: mixture.expertNames))
  }
}

// Step 3. Evaluation: the mixture against each expert with oracle routing.
print("\nStep 3: test accuracy")
for (index, task) in tasks.enumerated() {
  let test = Array(examples(task, .test).prefix(evaluated))
  let routed = mixture.accuracy(test, tokenizer: tokenizer)
  let oracle = mixture.usingOnly(expert: index) { model.accuracy(test, tokenizer: tokenizer) }
  print(
    String(
      format: "  %@: expert alone %.1f%%, mixture %.1f%%", task.name, 100 * oracle, 100 * routed))
}

// Step 4. Where each task's tokens go, per layer: the share of tokens whose first choice is
// each expert, and the mean weight the task's own expert gets (its share of the update).
print(
  "\nStep 4: which expert each task's tokens choose first, and the own expert's weight, by layer")
for (own, task) in tasks.enumerated() {
  let tally = mixture.tally(Array(examples(task, .test).prefix(100)), tokenizer: tokenizer)
  let shares = (0..<experts.count).map { expert in
    tally.meanByLayer { $0.firstChoiceShare[expert] }
  }
  let ownWeight = tally.meanByLayer { $0.meanWeight[own] }
  for layer in 0..<model.layerCount {
    print(
      "  \(task.name) layer \(layer): first choice "
        + zip(mixture.expertNames, shares).map { String(format: "%@ %.0f%%", $0, 100 * $1[layer]) }
        .joined(separator: ", ")
        + String(format: "; own weight %.2f", ownWeight[layer]))
  }
}
