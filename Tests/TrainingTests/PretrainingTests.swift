import Autodiff
import Foundation
import NN
import Testing
import ToyTasks

@testable import Training

/// A fresh folder path under the temporary directory.
func temporaryFolder(_ name: String) -> URL {
  FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)")
}

/// A tokenizer of 12 words, two small tasks over them, and a one-layer base recipe of 6
/// steps: a pretraining that takes milliseconds.
func tinyPretraining() -> (Tokenizer, [[Example]], BaseRecipe) {
  let tokenizer = Tokenizer(words: (0..<12).map { "w\($0)" })
  let tasks = [0, 1].map { task in
    (0..<10).map { Example(prompt: "w\($0) w\(($0 + 5 * task) % 12)", answer: "w\(task + 3)") }
  }
  var recipe = BaseRecipe()
  (recipe.hiddenSize, recipe.layers, recipe.heads, recipe.intermediateSize) = (16, 1, 2, 16)
  recipe.training = TrainingSettings(steps: 6, batchSize: 4, learningRate: 1e-2)
  return (tokenizer, tasks, recipe)
}

@Test func anInterruptedAndResumedPretrainingEndsWithTheSameBaseBitForBit() throws {
  let (tokenizer, tasks, recipe) = tinyPretraining()
  let folder = temporaryFolder("pretrain-checkpoint")
  defer { try? FileManager.default.removeItem(at: folder) }
  let file = folder.appendingPathComponent(TrainingCheckpoint.fileName)
  func weights(_ model: any CausalLanguageModel) -> [[Float]] {
    model.namedParameters().map(\.tensor.floats)
  }

  let straight = try recipe.pretrain(tokenizer: tokenizer, tasks: tasks)
  var steps = 0
  #expect(throws: TrainingError.interrupted(step: 4, file: file.path)) {
    try recipe.pretrain(
      tokenizer: tokenizer, tasks: tasks,
      checkpoint: CheckpointPolicy(
        file: file, every: 3,
        shouldStop: {
          steps += 1
          return steps == 4
        }))
  }
  #expect(try TrainingCheckpoint.load(from: file).step == 4)
  let resumed = try recipe.pretrain(
    tokenizer: tokenizer, tasks: tasks,
    checkpoint: CheckpointPolicy(file: file, every: 3, resume: true))
  #expect(weights(resumed) == weights(straight))
  #expect(
    weights(resumed)
      != weights(
        LlamaForCausalLM(recipe.configuration(vocabularySize: tokenizer.count), seed: recipe.seed)),
    "pretraining changed the weights")
}

/// Pretraining on demand (the first `train` or `mix` without a cached base) checkpoints
/// into the cache folder when stopped, and the next call resumes it to the same base.
@Test func anOnDemandPretrainingStoppedAndStartedAgainResumesToTheSameBase() throws {
  let (tokenizer, tasks, recipe) = tinyPretraining()
  let caches = [temporaryFolder("cache-straight"), temporaryFolder("cache-stopped")]
  defer { for cache in caches { try? FileManager.default.removeItem(at: cache) } }

  let straight = try recipe.loadOrPretrain(tokenizer: tokenizer, tasks: tasks, cache: caches[0])
  var steps = 0
  var resumed: [Bool] = []
  let folder = caches[1].appendingPathComponent(recipe.fingerprint(tokenizer))
  let file = folder.appendingPathComponent(TrainingCheckpoint.fileName)
  #expect(throws: TrainingError.interrupted(step: 4, file: file.path)) {
    try recipe.loadOrPretrain(
      tokenizer: tokenizer, tasks: tasks, cache: caches[1], checkpointEvery: 3,
      shouldStop: {
        steps += 1
        return steps == 4
      }, willPretrain: { resumed.append($1) })
  }
  #expect(FileManager.default.fileExists(atPath: file.path))
  let again = try recipe.loadOrPretrain(
    tokenizer: tokenizer, tasks: tasks, cache: caches[1], willPretrain: { resumed.append($1) })
  #expect(resumed == [false, true])
  #expect(again.pretrainingSeconds > 0)
  #expect(
    again.model.namedParameters().map(\.tensor.floats)
      == straight.model.namedParameters().map(\.tensor.floats))
  // The finished base replaced the folder whole: the checkpoint is gone.
  #expect(!FileManager.default.fileExists(atPath: file.path))
}

/// A base shipped with the sources (a folder named by the recipe's fingerprint) is read
/// and cached instead of pretrained; one made on another vocabulary is not.
@Test func aShippedBaseIsCachedInsteadOfPretrained() throws {
  let (tokenizer, tasks, recipe) = tinyPretraining()
  let (shipped, cache) = (temporaryFolder("shipped"), temporaryFolder("cache-empty"))
  defer { for folder in [shipped, cache] { try? FileManager.default.removeItem(at: folder) } }
  let made = try recipe.loadOrPretrain(tokenizer: tokenizer, tasks: tasks, cache: shipped)

  var events: [String] = []
  let read = try recipe.loadOrPretrain(
    tokenizer: tokenizer, tasks: tasks, cache: cache, shipped: shipped,
    willPretrain: { _, _ in events.append("pretrain") },
    willCopy: { events.append("copy \($0.lastPathComponent)") })
  #expect(events == ["copy \(recipe.fingerprint(tokenizer))"])
  #expect(read.pretrainingSeconds == 0)
  #expect(read.folder.path == cache.appendingPathComponent(recipe.fingerprint(tokenizer)).path)
  #expect(
    read.model.namedParameters().map(\.tensor.floats)
      == made.model.namedParameters().map(\.tensor.floats))
  // The cache now holds the same files, byte for byte.
  for file in ["model.safetensors", "config.json", "tokenizer.json"] {
    #expect(
      try Data(contentsOf: read.folder.appendingPathComponent(file))
        == Data(contentsOf: made.folder.appendingPathComponent(file)), "\(file)")
  }

  // Another vocabulary has another fingerprint: the shipped base is not used.
  let other = Tokenizer(words: (0..<13).map { "w\($0)" })
  events = []
  let otherCache = temporaryFolder("cache-other")
  defer { try? FileManager.default.removeItem(at: otherCache) }
  _ = try recipe.loadOrPretrain(
    tokenizer: other, tasks: tasks, cache: otherCache, shipped: shipped,
    willPretrain: { _, _ in events.append("pretrain") },
    willCopy: { events.append("copy \($0.lastPathComponent)") })
  #expect(events == ["pretrain"])
}

/// The base shipped in `Models/` is named by the default recipe's fingerprint on the task
/// files' vocabulary: a change to either leaves it unused (and `tinymixer pretrain --check`
/// compares its weights with a fresh pretraining).
@Test func theShippedBaseIsTheDefaultRecipesOnTheTaskFiles() throws {
  let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()
  let datasets = packageRoot.appendingPathComponent("Datasets")
  let examples = try ToyTask.all.flatMap { task in
    try Split.allCases.flatMap { try task.load($0, from: datasets) }
  }
  let tokenizer = Tokenizer(examples: examples)
  let models = packageRoot.appendingPathComponent("Models")
  let shipped = try FileManager.default.contentsOfDirectory(atPath: models.path).filter {
    !$0.hasPrefix(".")
  }
  #expect(shipped == [BaseRecipe().fingerprint(tokenizer)])
  let folder = models.appendingPathComponent(BaseRecipe().fingerprint(tokenizer))
  #expect(try Tokenizer.load(from: folder) == tokenizer)
  let model = try LlamaForCausalLM.load(from: folder)
  #expect(model.configuration == BaseRecipe().configuration(vocabularySize: tokenizer.count))
}
