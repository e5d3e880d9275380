import Foundation
import LoRAMixer
import NN
import ToyTasks
import Training

// The paper's Table 5: a mixer trained on one base, loaded untouched into another base of
// the same shape. Here the default LoRA-Mixer of the first seed goes to a base pretrained
// the same way from another seed, and to its own base pretrained further; on each, the
// base alone, every expert on its own task and the mixer are measured.

extension Reproduction {
  /// Where the default mixer of the first seed is kept, for the transfer experiment.
  var defaultMixerFolder: URL {
    folder.appendingPathComponent("mixers/default-seed\(plan.seeds[0])")
  }

  /// The jobs of the transfer experiment: one per second base, one after the other after
  /// the default mixer (the first saves that mixer if it is not saved yet; two at once would
  /// both train it).
  func transferJobs() -> [Job] {
    guard !plan.mainTableOnly, model is LlamaForCausalLM else { return [] }
    var previous = plan.mixerID(plan.mixRecipe(), seed: plan.seeds[0])
    return ReproducePlan.transferBases.map { id, name in
      defer { previous = plan.transferID(id, "mixer") }
      return Job(
        id: plan.transferID(id, "mixer"), label: "the default mixer on \(name)", cost: 90,
        needsExperts: true, after: [previous]
      ) { try self.measureTransfer(to: id) }
    }
  }

  /// The recipe that makes a base of this reproduction's shape: the default recipe with the
  /// model's sizes, pretraining `steps` steps (the recipe's own when nil).
  func baseRecipe(seed: UInt64, steps: Int?) -> BaseRecipe? {
    guard let llama = model as? LlamaForCausalLM else { return nil }
    let configuration = llama.configuration
    var recipe = BaseRecipe()
    (recipe.hiddenSize, recipe.layers) = (configuration.hiddenSize, configuration.layers)
    (recipe.heads, recipe.intermediateSize) = (configuration.heads, configuration.intermediateSize)
    recipe.contextLength = configuration.contextLength
    recipe.seed = seed
    if let steps { recipe.training.steps = steps }
    return recipe
  }

  /// The second base `id`: pretrained from seed 1 by the base recipe, or this base read
  /// again and pretrained further on the pretraining data drawn anew, at a tenth of the
  /// recipe's learning rate.
  func secondBase(_ id: String) throws -> (model: any CausalLanguageModel, how: String) {
    let tasks = ToyTask.all.map { project.examples($0, .train) }
    let tokenizer = project.tokenizer
    guard let recipe = baseRecipe(seed: 1, steps: plan.transferPretrainSteps) else {
      throw ToolError.failure("the transfer experiment needs a Llama base")
    }
    var progress = ProgressDisplay("  pretrain")
    if id == "another-seed" {
      let base = try recipe.pretrain(tokenizer: tokenizer, tasks: tasks) { progress.show($0) }
      return (
        base,
        "pretrained \(recipe.training.steps) steps from seed 1 (`tinymixer pretrain --seed 1`)"
      )
    }
    let base = try loadCausalLanguageModel(from: baseFolder)
    var settings = recipe.training
    // Continued pretraining as it is usually done: a tenth of the learning rate.
    settings.steps = plan.transferFurtherSteps ?? recipe.training.steps / 4
    settings.learningRate /= 10
    settings.seed = 1
    _ = try Training.train(
      parameters: base.namedParameters(), examples: recipe.pretrainingExamples(tasks),
      settings: settings,
      loss: { base.loss($0, tokenizer: tokenizer, answersOnly: false) },
      report: { progress.show($0) })
    base.setTrainable(false)
    return (
      base,
      "this base pretrained \(settings.steps) more steps at a tenth of the learning rate, the data drawn from seed 1"
    )
  }

  /// The default mixer of the first seed, as a folder: saved when it trained, else trained
  /// again (runs are the same bit for bit) and saved.
  func savedDefaultMixer() throws -> URL {
    let folder = defaultMixerFolder
    if (try? MixerFiles.readConfig(folder)) != nil { return folder }
    _ = try trainedMixture(plan.mixRecipe(), seed: plan.seeds[0])
    return folder
  }

  /// The base `id` alone, each expert on its own task, and the default mixer, untouched.
  func measureTransfer(to id: String) throws {
    let started = Date()
    let mixerFolder = try savedDefaultMixer()
    let (base, how) = try secondBase(id)
    let tokenizer = project.tokenizer
    var alone = record(plan.transferID(id, "base"), seed: 1, doing: "\(how), alone")
    var experts = record(
      plan.transferID(id, "experts"), seed: 1,
      doing: "\(how), each expert on its own task, untouched")
    for task in tasks {
      base.detachAdapters()
      alone.accuracy[task.name] = base.accuracy(test(task), tokenizer: tokenizer)
      let file = try expert(task)
      _ = try attachedAdapters(file, base)
      experts.accuracy[task.name] = base.accuracy(test(task), tokenizer: tokenizer)
    }
    base.detachAdapters()
    let (mixture, _) = try MixerFiles.load(from: mixerFolder, onto: base)
    var mixed = record(
      plan.transferID(id, "mixer"), seed: 1,
      doing: "\(how), the default mixer of seed \(plan.seeds[0]) loaded untouched")
    mixed.accuracy = project.testAccuracy(of: mixture, on: tasks, limit: plan.testExamples)
    // One job made the three runs; its time is the mixer run's, so that times add up.
    for run in [alone, experts] { results.runs[run.id] = run }
    keep(mixed, started: started)
    print(
      "    the mixer on \(id): mean test accuracy \(percent(mixed.meanAccuracy(tasks.map(\.name))))"
    )
  }
}
