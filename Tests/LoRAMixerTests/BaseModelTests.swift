import Foundation
import NN
import Testing
import ToyTasks

@testable import LoRAMixer

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
  func weights(_ model: LlamaForCausalLM) -> [[Float]] {
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
