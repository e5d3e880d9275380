import LoRAMixer
import NN
import ToyTasks
import Training

/// The one mixture experiment `tinymixer mix` and the reproduction both run: build the
/// mixture over the experts, train its routers on the tasks' mixed examples, test it.
extension Project {
  /// The mixture `recipe` describes over `experts` (attached to `model`), its routers
  /// initialised from `seed`.
  public func mixture(
    _ recipe: MixRecipe, over experts: [(name: String, adapters: [String: LoRA])],
    model: any CausalLanguageModel, seed: UInt64
  ) -> Mixture {
    Mixture(
      model: model, experts: experts, targets: recipe.targets, settings: recipe.routing, seed: seed)
  }

  /// The recipe's mixed training examples, drawn evenly from `tasks`' training splits by
  /// `seed`, with no task labels.
  public func mixedExamples(_ tasks: [ToyTask], recipe: MixRecipe, seed: UInt64) -> [Example] {
    MixRecipe.mixedExamples(
      tasks.map { examples($0, .train) }, count: recipe.routerExamples, seed: seed)
  }

  /// Trains `mixture`'s routers (and its experts, when the recipe is joint) on `mixed`.
  public func train(
    _ mixture: Mixture, on mixed: [Example], recipe: MixRecipe, seed: UInt64,
    checkpoint: CheckpointPolicy? = nil, report: (MixStepReport) -> Void
  ) throws {
    try mixture.train(
      on: mixed, tokenizer: tokenizer, recipe: recipe, seed: seed, checkpoint: checkpoint,
      report: report)
  }

  /// Each task's exact-match accuracy with `mixture` on its first `limit` test examples
  /// (all of them when nil), by task name.
  public func testAccuracy(of mixture: Mixture, on tasks: [ToyTask], limit: Int? = nil)
    -> [String: Double]
  {
    Dictionary(
      uniqueKeysWithValues: tasks.map { task in
        let test = examples(task, .test)
        return (
          task.name,
          mixture.accuracy(Array(test.prefix(limit ?? test.count)), tokenizer: tokenizer)
        )
      })
  }

  /// Each task's test accuracy with its own expert alone (if one is named after it) and
  /// with the base alone.
  public func expertAndBaseAccuracy(_ tasks: [ToyTask], mixture: Mixture) -> [String: (
    expert: Double?, base: Double
  )] {
    var before: [String: (expert: Double?, base: Double)] = [:]
    for task in tasks {
      let test = examples(task, .test)
      let expert = mixture.expertNames.firstIndex(of: task.name).map { index in
        mixture.usingOnly(expert: index) {
          mixture.model.accuracy(test, tokenizer: tokenizer)
        }
      }
      before[task.name] = (
        expert,
        mixture.model.withoutAdapters {
          mixture.model.accuracy(test, tokenizer: tokenizer)
        }
      )
    }
    return before
  }
}
