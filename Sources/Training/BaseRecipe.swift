import Autodiff
import Foundation
import NN
import Random
import SafeTensors
import ToyTasks

/// How the frozen base model is made: its shape and its pretraining.
///
/// The base is a language model trained on every task's training prompts, each followed by
/// `<sep>` and an answer drawn at random from that task's answers, independent of the
/// prompt. It learns the words and the format, not the tasks: greedy decoding gives about
/// the majority-answer accuracy, the chance level of exact match.
public struct BaseRecipe: Equatable, Hashable, Sendable {
  /// The kind of model: the Llama transformer, or a Mamba of the same width and depth.
  public var architecture = Architecture.llama
  /// The model's shape, apart from the vocabulary (set from the tokenizer). A Mamba uses
  /// the width, the layers and the context; its state (16), expansion (2) and convolution
  /// (4 taps) are Hugging Face's defaults.
  public var hiddenSize = 128, layers = 4, heads = 4, intermediateSize = 384, contextLength = 64
  /// Pretraining.
  public var training = TrainingSettings(
    steps: 800, batchSize: 64, learningRate: 3e-3, weightDecay: 0.01)
  /// The seed of the initial weights and of the random answers.
  public var seed: UInt64 = 0

  /// The default recipe.
  public init() {}

  /// A fresh model of this recipe for a vocabulary of `vocabularySize`, its weights drawn
  /// from `seed`.
  public func makeModel(vocabularySize: Int) -> any CausalLanguageModel {
    switch architecture {
    case .llama: LlamaForCausalLM(configuration(vocabularySize: vocabularySize), seed: seed)
    case .mamba: MambaForCausalLM(mambaConfiguration(vocabularySize: vocabularySize), seed: seed)
    }
  }

  /// The Mamba configuration for `tokenizer`'s vocabulary.
  public func mambaConfiguration(vocabularySize: Int) -> MambaConfiguration {
    MambaConfiguration(
      vocabularySize: vocabularySize, hiddenSize: hiddenSize, layers: layers,
      contextLength: contextLength)
  }

  /// Why this recipe cannot be built, or nil if it can.
  public func problem(vocabularySize: Int) -> String? {
    switch architecture {
    case .llama: configuration(vocabularySize: vocabularySize).problem
    case .mamba: mambaConfiguration(vocabularySize: vocabularySize).problem
    }
  }

  /// The Llama configuration for `tokenizer`'s vocabulary.
  public func configuration(vocabularySize: Int) -> LlamaConfiguration {
    LlamaConfiguration(
      vocabularySize: vocabularySize, hiddenSize: hiddenSize, layers: layers, heads: heads,
      intermediateSize: intermediateSize, contextLength: contextLength)
  }

  /// A name that changes whenever the recipe or the vocabulary does: the cache folder of
  /// the base model, so one built on another vocabulary is rebuilt, never misread.
  ///
  /// The recipe is described by Swift's own printing of it, so a field added later is in the
  /// name without anyone remembering to add it; the module names Swift prints before nested
  /// types (`Training.TrainingSettings(`) are left out, so moving a type to another module
  /// does not rename every base.
  public func fingerprint(_ tokenizer: Tokenizer) -> String {
    let description = "\(self)".replacing(/\b\w+\.(?=\w+\()/, with: "")
    return "base-" + stableHash(description + "|" + tokenizer.fingerprint)
  }

  /// The pretraining examples: each task's training prompts with a random answer of that task.
  public func pretrainingExamples(_ tasks: [[Example]]) -> [Example] {
    var random = SeededGenerator(seed: seed &+ 101)
    return tasks.flatMap { examples in
      let answers = examples.map(\.answer)
      return examples.map {
        Example(prompt: $0.prompt, answer: answers[random.nextInt(below: answers.count)])
      }
    }
  }

  /// Pretrains a base model on `tasks`' training examples, saving and resuming its
  /// training state as `checkpoint` says.
  public func pretrain(
    tokenizer: Tokenizer, tasks: [[Example]], checkpoint: CheckpointPolicy? = nil,
    report: (StepReport) -> Void = { _ in }
  ) throws -> any CausalLanguageModel {
    let model = makeModel(vocabularySize: tokenizer.count)
    _ = try train(
      parameters: model.namedParameters(), examples: pretrainingExamples(tasks),
      settings: training, checkpoint: checkpoint,
      loss: {
        model.loss($0, tokenizer: tokenizer, answersOnly: false)
      }, report: report)
    model.setTrainable(false)
    return model
  }
}

extension BaseRecipe {
  /// Where base models are cached: `$TINYMIXER_CACHE`, else `$XDG_CACHE_HOME/tinymixer`,
  /// else `$HOME/.cache/tinymixer` (the user's home directory if `HOME` is unset).
  public static var cacheFolder: URL {
    let environment = ProcessInfo.processInfo.environment
    if let path = environment["TINYMIXER_CACHE"], !path.isEmpty {
      return URL(fileURLWithPath: path)
    }
    if let path = environment["XDG_CACHE_HOME"], !path.isEmpty {
      return URL(fileURLWithPath: path).appendingPathComponent("tinymixer")
    }
    let home =
      environment["HOME"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
      ?? FileManager.default.homeDirectoryForCurrentUser
    return home.appendingPathComponent(".cache/tinymixer")
  }

  /// The base model for `tokenizer` from `cache` (a folder named by `fingerprint`); if
  /// missing or unreadable there, the copy of the same name under `shipped` (the bases
  /// committed with the sources), saved into the cache; else pretrained on `tasks` and saved
  /// there (weights, config and tokenizer files). Returns the model (frozen), its folder in
  /// the cache, and the seconds spent pretraining (0 when it was cached or shipped).
  ///
  /// The pretraining checkpoints into that folder every `checkpointEvery` steps and when
  /// `shouldStop` answers true (it then throws `TrainingError.interrupted`); a later call
  /// finds the checkpoint and resumes from it, ending with the same base bit for bit.
  /// `willPretrain` is told the folder and whether a checkpoint is resumed; `willCopy`, the
  /// shipped folder a base is read from.
  public func loadOrPretrain(
    tokenizer: Tokenizer, tasks: [[Example]], cache: URL = BaseRecipe.cacheFolder,
    shipped: URL? = nil, checkpointEvery: Int = 100, shouldStop: @escaping () -> Bool = { false },
    willPretrain: (URL, Bool) -> Void = { _, _ in }, willCopy: (URL) -> Void = { _ in },
    report: (StepReport) -> Void = { _ in }
  ) throws -> (model: any CausalLanguageModel, folder: URL, pretrainingSeconds: Double) {
    let folder = cache.appendingPathComponent(fingerprint(tokenizer))
    if let model = try? loadCausalLanguageModel(from: folder),
      (try? Tokenizer.load(from: folder)) == tokenizer
    {
      model.setTrainable(false)
      return (model, folder, 0)
    }
    // The fingerprint names the recipe and the vocabulary, so a shipped base of that name
    // is what pretraining would make (`tinymixer pretrain --check` compares the two).
    if let source = shipped?.appendingPathComponent(fingerprint(tokenizer)),
      let model = try? loadCausalLanguageModel(from: source),
      (try? Tokenizer.load(from: source)) == tokenizer
    {
      willCopy(source)
      try model.saveWithTokenizer(tokenizer, to: folder)
      model.setTrainable(false)
      return (model, folder, 0)
    }
    try checkWritable(folder)  // before the pretraining, not after
    let file = folder.appendingPathComponent(TrainingCheckpoint.fileName)
    let resume = FileManager.default.fileExists(atPath: file.path)
    willPretrain(folder, resume)
    let started = Date()
    let model = try pretrain(
      tokenizer: tokenizer, tasks: tasks,
      checkpoint: CheckpointPolicy(
        file: file, every: checkpointEvery, resume: resume, shouldStop: shouldStop),
      report: report)
    try model.saveWithTokenizer(tokenizer, to: folder)
    return (model, folder, Date().timeIntervalSince(started))
  }
}

/// The kinds of base model.
public enum Architecture: String, CaseIterable, Sendable {
  /// `LlamaForCausalLM`: attention and a SwiGLU MLP in every layer.
  case llama
  /// `MambaForCausalLM`: a selective state-space mixer in every layer.
  case mamba

  /// The architecture of `model`.
  public init(of model: any CausalLanguageModel) {
    self = model is MambaForCausalLM ? .mamba : .llama
  }
}

extension CausalLanguageModel {
  /// Writes this model and `tokenizer` as the Hugging Face model directory `folder`, as a
  /// whole (`replaceFolder`): a failure leaves the previous model there.
  public func saveWithTokenizer(_ tokenizer: Tokenizer, to folder: URL) throws {
    try replaceFolder(folder) { fresh in
      try save(
        to: fresh, tokenIds: tokenizer.tokenIds, metadata: ["tokenizer": tokenizer.fingerprint])
      try tokenizer.save(to: fresh, contextLength: contextLength)
    }
  }
}
