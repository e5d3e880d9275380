import Foundation
import LoRAMixer
import NN
import ToyTasks
import Training

/// What the training commands share: the task files, the tokenizer over all of them, and
/// the cached base model.
public struct Project {
  /// The folder of the task files.
  public let datasets: URL
  /// The tokenizer over every task's files.
  public let tokenizer: Tokenizer
  /// Every task's splits, read from its files.
  let splits: [String: [Split: [Example]]]

  /// Reads every task's files under `datasets`.
  public init(datasets: URL) throws {
    self.datasets = datasets
    var splits: [String: [Split: [Example]]] = [:]
    for task in ToyTask.all {
      var files: [Split: [Example]] = [:]
      for split in Split.allCases {
        do { files[split] = try task.load(split, from: datasets) } catch let error as DatasetError {
          throw ToolError.failure(
            "\(error) (run 'tinymixer datasets --write' to regenerate the files)")
        }
      }
      splits[task.name] = files
    }
    self.splits = splits
    tokenizer = Tokenizer(examples: splits.values.flatMap { $0.values.flatMap { $0 } })
  }

  /// The task named `name`, or a usage error listing the tasks.
  public static func task(_ name: String) throws -> ToyTask {
    guard let task = ToyTask.named(name) else {
      throw ToolError.usage(
        "unknown task '\(name)'; tasks: \(ToyTask.all.map(\.name).joined(separator: ", "))")
    }
    return task
  }

  /// The examples of `task`'s `split`.
  public func examples(_ task: ToyTask, _ split: Split) -> [Example] { splits[task.name]![split]! }

  /// Where the base model of `recipe` is cached.
  public func baseDirectory(_ recipe: BaseRecipe) -> URL {
    BaseRecipe.cacheFolder.appendingPathComponent(recipe.fingerprint(tokenizer))
  }

  /// The base model: read from the cache, else from the copy shipped in `Models/` (saved
  /// into the cache), else pretrained (with progress) and saved there. Returns it with its
  /// folder and the seconds spent pretraining (0 when cached or shipped).
  func baseModel(_ recipe: BaseRecipe = BaseRecipe()) throws -> (
    any CausalLanguageModel, URL, Double
  ) {
    var progress = ProgressDisplay("pretrain")
    Interruption.install()  // Ctrl-C saves the pretraining, and the next run resumes it
    do {
      return try recipe.loadOrPretrain(
        tokenizer: tokenizer, tasks: ToyTask.all.map { examples($0, .train) },
        shipped: Locations.shippedBases, shouldStop: { Interruption.isRequested },
        willPretrain: { folder, resume in
          print(
            "pretraining the base model (\(recipe.training.steps) steps; cached afterwards in \(folder.path))"
              + (resume ? "; resuming from its checkpoint" : ""))
        },
        willCopy: { source in
          print(
            "base model read from \(source.path), the copy shipped with the sources (`tinymixer pretrain --check` pretrains it again and compares); cached in \(baseDirectory(recipe).path)"
          )
        }, report: { progress.show($0) })
    } catch TrainingError.interrupted(let step, let file) {
      throw ToolError.interrupted(
        "interrupted while pretraining the base, after step \(step); the state is saved in \(file): run the same command again to resume it"
      )
    }
  }

  /// Refuses task files with an example longer than `contextLength` tokens (with `<bos>`,
  /// `<sep>` and `<eos>`), naming its file and line: the model cannot read past its context.
  public func checkLengths(contextLength: Int) throws {
    for task in ToyTask.all {
      for split in Split.allCases {
        for (index, example) in examples(task, split).enumerated() {
          let length = tokenizer.sequence(example).ids.count - 1
          guard length <= contextLength else {
            throw ToolError.failure(
              "\(task.file(split, in: datasets).path):\(index + 1): this example is \(length) tokens long, more than the model's context of \(contextLength) (max_position_embeddings)"
            )
          }
        }
      }
    }
  }

  /// The base model: the directory `folder` if given, else the cached one of `recipe`
  /// (pretrained if missing); with its folder and the seconds spent pretraining. Every
  /// example must fit the model's context.
  public func loadBase(_ folder: URL?, recipe: BaseRecipe = BaseRecipe()) throws -> (
    any CausalLanguageModel, URL, Double
  ) {
    guard let folder else {
      // Checked before the minutes a missing base takes to pretrain.
      try checkLengths(contextLength: recipe.contextLength)
      return try baseModel(recipe)
    }
    let model = try readBase(folder)
    try checkLengths(contextLength: model.contextLength)
    return (model, folder, 0)
  }

  /// The model directory `folder`, frozen, if it was built on the task files' vocabulary.
  private func readBase(_ folder: URL) throws -> any CausalLanguageModel {
    let model: any CausalLanguageModel
    do { model = try loadCausalLanguageModel(from: folder) } catch {
      throw ToolError.failure("\(error)")
    }
    guard model.vocabularySize == tokenizer.count,
      (try? Tokenizer.load(from: folder)) == tokenizer
    else {
      throw ToolError.failure(
        "\(folder.path) was built on another vocabulary than the task files' (\(tokenizer.count) tokens); pretrain a base for them"
      )
    }
    model.setTrainable(false)
    return model
  }
}
