import Autodiff
import Experiments
import Foundation
import LoRAMixer
import NN
import ToyTasks
import Training

/// `tinymixer train <task>`: a LoRA expert for one task on the frozen base model.
enum TrainCommand: Command {
  static let name = "train"
  static let summary = "train a LoRA expert for one toy task on the frozen base model"
  static let synopsis =
    "tinymixer train <task> [--architecture llama|mamba] [--steps N] [--lr X] [--rank R] [--alpha A] [--sites attention|mlp|all] [--batch N] [--seed N] [--threads N] [--out DIR] [--checkpoint-every N] [--resume] [--profile]"
  static var options: [Option] {
    let standard = ExpertRecipe.standard
    return Option.training(standard.training) + [
      Option(name: "rank", valueName: "R", help: "LoRA rank (default: \(standard.rank))"),
      Option(
        name: "alpha", valueName: "A",
        help: "LoRA alpha; the update is scaled by alpha / rank (default: \(Int(standard.alpha)))"),
      Option(
        name: "sites", valueName: "WHERE",
        help: "attention (q, k, v, o), mlp (gate, up, down) or all (default: all)"),
      .seed, .threads, .overwrite,
      Option(
        name: "out", valueName: "DIR",
        help: "where to save the adapter (default: runs/<task>/adapter, -seedN for other seeds)"),
      Project.baseOption, Project.architectureOption,
    ] + Option.checkpointing("the training state") + [
      Locations.datasetsOption,
      Option(
        name: "profile", valueName: nil,
        help: "also print where the training steps' time goes, by operation, summed over the run"),
    ]
  }

  static func run(_ arguments: Arguments) throws -> Int32 {
    try arguments.expectPositionals(1, 1, "the task to train (for example toy-sst2)")
    let task = try Project.task(arguments.positionals[0])
    var recipe = ExpertRecipe.standard
    recipe.training = try arguments.trainingSettings(recipe.training)
    recipe.rank = try arguments.integer("rank", default: recipe.rank, in: 1...1024)
    recipe.alpha = try arguments.number("alpha", default: recipe.alpha, in: 1e-6...1e6)
    recipe.targets = try arguments.choice("sites", default: SiteChoice.all).targets
    let seed = UInt64(try arguments.integer("seed", default: 0))
    let out =
      arguments.string("out").map { URL(fileURLWithPath: $0) }
      ?? Locations.expertFolder(task, seed: seed)
    try arguments.refuseToOverwrite(out, holding: "adapter_model.safetensors", what: "an adapter")
    let checkpoint = try arguments.checkpointPolicy(in: out)
    let started = Date()

    let project = try Project(arguments)
    let (model, baseFolder, pretrainSeconds) = try project.loadBase(arguments)
    let dev = project.examples(task, .dev)
    let test = project.examples(task, .test)
    let baseParameters = model.parameterCount
    // The projections of the recipe this base has (a Llama has no in_proj, a Mamba no q_proj).
    let layers: [(path: String, layer: Linear)]
    do { layers = try model.projections(named: recipe.targets) } catch {
      throw ToolError.usage("--sites: \(error)")
    }
    let names = Set(layers.map { String($0.path.split(separator: ".").last!) })
    let adapted = recipe.targets.filter(names.contains)
    let trainableCount = layers.reduce(0) {
      $0 + recipe.rank * ($1.layer.inputs + $1.layer.outputs)
    }
    print(
      "\(task.name): training a LoRA expert (rank \(recipe.rank), alpha \(Int(recipe.alpha)), on \(adapted.joined(separator: ", ")) of \(model.layerCount) layers: \(grouped(trainableCount)) trainable parameters)"
    )
    Interruption.install()
    let trainingStarted = Date()
    var progress = ProgressDisplay(task.name)
    var devResults: [String] = []
    let evaluationInterval = max(1, recipe.training.steps / 3)
    var (profile, profiledSteps) = (OperationProfile(), 0)
    let (adapters, losses) = try Tape.$profilesOperations.withValue(arguments.has("profile")) {
      try recipe.train(
        model, on: project.examples(task, .train), tokenizer: project.tokenizer, seed: seed,
        checkpoint: checkpoint
      ) { report in
        if let stepProfile = report.profile {
          profile.add(stepProfile)
          profiledSteps += 1
        }
        progress.show(report)
        if report.step % evaluationInterval == 0
          && report.steps - report.step >= evaluationInterval / 2
          || report.step == report.steps
        {
          devResults.append(
            "\(report.step): \(percent(model.accuracy(dev, tokenizer: project.tokenizer)))")
        }
      }
    }
    let trainingSeconds = Date().timeIntervalSince(trainingStarted)
    let testAccuracy = model.accuracy(test, tokenizer: project.tokenizer)
    let baseAccuracy = model.withoutAdapters { model.accuracy(test, tokenizer: project.tokenizer) }
    try LoRAAdapterFile(adapters: adapters, alpha: recipe.alpha, baseModel: baseFolder.path).save(
      to: out)
    try? FileManager.default.removeItem(at: checkpoint.file)

    print("dev accuracy at step \(devResults.joined(separator: ", "))")
    print(
      "test accuracy: \(percent(testAccuracy)) of \(test.count); the frozen base alone: \(percent(baseAccuracy)); always the majority answer: \(percent(ExactMatch.majorityAccuracy(train: project.examples(task, .train), test: test)))"
    )
    print(String(format: "final training loss: %.4f", losses.last ?? .nan))
    print(
      "trainable parameters: \(grouped(trainableCount)), \(percent(Double(trainableCount) / Double(baseParameters + trainableCount))) of \(grouped(baseParameters + trainableCount)) (the base's \(grouped(baseParameters)) are frozen)"
    )
    let pretraining =
      pretrainSeconds > 0 ? String(format: "pretraining the base %.1f s, ", pretrainSeconds) : ""
    print(
      String(
        format: "wall time: %.1f s (%@training %.1f s)", Date().timeIntervalSince(started),
        pretraining,
        trainingSeconds))
    print("adapter saved to \(out.path) (adapter_config.json, adapter_model.safetensors)")
    if arguments.has("profile") {
      printOperationProfile(
        profile, optimizer: nil,
        heading:
          "where the training steps' time goes, by operation, summed over \(profiledSteps) steps (forward time runs from one record to the next; the optimizer, clipping and the dev evaluations are not included):"
      )
    }
    return 0
  }
}
