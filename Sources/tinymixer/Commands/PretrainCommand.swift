import Experiments
import Foundation
import LoRAMixer
import NN
import ToyTasks
import Training

/// `tinymixer pretrain`: the base model, a language model of every task's prompts.
enum PretrainCommand: Command {
  static let name = "pretrain"
  static let summary =
    "pretrain the base model on every task's prompts and save it (the cache, by default)"
  static let synopsis =
    "tinymixer pretrain [--architecture llama|mamba] [--steps N] [--lr X] [--batch N] [--hidden N] [--layers N] [--heads N] [--intermediate N] [--seed N] [--out DIR] [--checkpoint-every N] [--resume] [--check]"
  static var options: [Option] {
    let standard = BaseRecipe()
    return [Project.architectureOption] + Option.training(standard.training, batchUnit: "sequences")
      + [
        Option(
          name: "hidden", valueName: "N",
          help: "width of the model (default: \(standard.hiddenSize))"
        ),
        Option(
          name: "layers", valueName: "N", help: "decoder layers (default: \(standard.layers))"),
        Option(name: "heads", valueName: "N", help: "attention heads (default: \(standard.heads))"),
        Option(
          name: "intermediate", valueName: "N",
          help: "width of the MLP (default: \(standard.intermediateSize))"),
        .seed, .threads, .overwrite,
        Option(
          name: "out", valueName: "DIR",
          help: "the model directory to write (default: the cache folder for this recipe)"),
      ] + Option.checkpointing("the training state") + [
        Option(
          name: "check", valueName: nil,
          help:
            "pretrain, write nothing, and compare bit for bit with the base shipped in Models/ for this recipe"
        ),
        Locations.datasetsOption,
      ]
  }

  static func run(_ arguments: Arguments) throws -> Int32 {
    try arguments.expectPositionals(0, 0, "")
    var recipe = BaseRecipe()
    recipe.architecture = try arguments.choice("architecture", default: recipe.architecture)
    recipe.training = try arguments.trainingSettings(recipe.training)
    recipe.hiddenSize = try arguments.integer("hidden", default: recipe.hiddenSize, in: 2...8192)
    recipe.layers = try arguments.integer("layers", default: recipe.layers, in: 1...256)
    recipe.heads = try arguments.integer("heads", default: recipe.heads, in: 1...256)
    recipe.intermediateSize = try arguments.integer(
      "intermediate", default: recipe.intermediateSize, in: 1...65536)
    recipe.seed = UInt64(try arguments.integer("seed", default: 0))
    if let problem = recipe.problem(vocabularySize: 100) {
      throw ToolError.usage(problem)
    }

    let project = try Project(arguments)
    if arguments.has("check") { return try check(recipe, project) }
    let folder =
      arguments.string("out").map { URL(fileURLWithPath: $0) } ?? project.baseDirectory(recipe)
    try arguments.refuseToOverwrite(folder, holding: "model.safetensors", what: "a model")
    try project.checkLengths(contextLength: recipe.contextLength)
    let checkpoint = try arguments.checkpointPolicy(in: folder)
    Interruption.install()
    let started = Date()
    var progress = ProgressDisplay("pretrain")
    var last = 0.0
    let model = try recipe.pretrain(
      tokenizer: project.tokenizer, tasks: ToyTask.all.map { project.examples($0, .train) },
      checkpoint: checkpoint,
      report: { report in
        progress.show(report)
        last = report.loss
      })
    try model.saveWithTokenizer(project.tokenizer, to: folder)
    try? FileManager.default.removeItem(at: checkpoint.file)
    print(
      String(
        format: "final loss %.4f; %d parameters; %.1f s", last, model.parameterCount,
        Date().timeIntervalSince(started)))
    for task in ToyTask.all {
      let dev = project.examples(task, .dev)
      print(
        "\(task.name) dev accuracy of the base: \(percent(model.accuracy(dev, tokenizer: project.tokenizer)))"
      )
    }
    print("saved to \(folder.path)")
    return 0
  }

  /// `--check`: pretrains `recipe` in memory and compares every weight, bit for bit, with
  /// the base shipped under `Models/` by the recipe's fingerprint. Exit 0 when identical.
  static func check(_ recipe: BaseRecipe, _ project: Project) throws -> Int32 {
    let shipped = Locations.shippedBases.appendingPathComponent(
      recipe.fingerprint(project.tokenizer))
    let expected: any CausalLanguageModel
    do { expected = try loadCausalLanguageModel(from: shipped) } catch {
      throw ToolError.failure(
        "no shipped base for this recipe and vocabulary at \(shipped.path): \(error)")
    }
    try project.checkLengths(contextLength: recipe.contextLength)
    let started = Date()
    var progress = ProgressDisplay("pretrain")
    let model = try recipe.pretrain(
      tokenizer: project.tokenizer, tasks: ToyTask.all.map { project.examples($0, .train) },
      report: { progress.show($0) })
    let shippedWeights = Dictionary(
      uniqueKeysWithValues: expected.namedParameters().map { ($0.name, $0.tensor.scalars) })
    var differing: [String] = []
    for (name, tensor) in model.namedParameters() where shippedWeights[name] != tensor.scalars {
      differing.append(name)
    }
    let seconds = String(format: "%.1f s", Date().timeIntervalSince(started))
    guard differing.isEmpty else {
      print(
        "the shipped base \(shipped.path) differs from this pretraining in \(differing.count == 1 ? "1 tensor" : "\(differing.count) tensors") (\(differing.prefix(3).joined(separator: ", ")); \(seconds))"
      )
      return 1
    }
    print(
      "the shipped base \(shipped.path) is bit for bit what this pretraining makes (\(shippedWeights.count) tensors; \(seconds))"
    )
    return 0
  }
}
