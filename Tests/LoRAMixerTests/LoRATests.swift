import Autodiff
import Foundation
import NN
import Random
import SafeTensors
import Testing
import ToyTasks
import Training

@testable import Kernels
@testable import LoRAMixer

let small = LlamaConfiguration(
  vocabularySize: 17, hiddenSize: 16, layers: 2, heads: 2, intermediateSize: 24, contextLength: 8)
let tokens = (0..<16).map { ($0 * 5) % 17 }

func temporaryFolder(_ name: String) -> URL {
  FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)")
}

@Test(arguments: GradientCheckCase.lora)
func loraPassesGradientCheck(_ check: GradientCheckCase) {
  let result = check.run()
  #expect(result.passed, "\(check.name): relative error \(result.maxRelativeError)")
}

@Test func aFreshAdapterLeavesOutputsBitIdentical() {
  let model = LlamaForCausalLM(small, seed: 1)
  let before = model.logits(tokens, batch: 2, length: 8).floats
  let adapters = attachLoRA(to: model, rank: 4, alpha: 8, seed: 2)
  #expect(adapters.count == 2 * 4)
  #expect(adapters.map(\.path).contains("model.layers.1.self_attn.o_proj"))
  #expect(model.logits(tokens, batch: 2, length: 8).floats == before)
}

@Test func mergedAndUnmergedOutputsAgree() {
  let model = LlamaForCausalLM(small, seed: 1)
  let adapters = attachLoRA(to: model, rank: 4, alpha: 8, seed: 2)
  var generator = SeededGenerator(seed: 3)
  for (_, lora) in adapters {
    lora.b.weight.assign(
      Tensor.normal(lora.b.weight.shape, standardDeviation: 0.2, generator: &generator).storage)
  }
  let adapted = model.logits(tokens, batch: 2, length: 8).floats
  let base = model.withoutAdapters { model.logits(tokens, batch: 2, length: 8).floats }
  #expect(zip(adapted, base).contains { abs($0 - $1) > 1e-3 })
  let layers = Dictionary(uniqueKeysWithValues: model.linearLayers(named: attentionProjections))
  for (path, lora) in adapters { lora.merge(into: layers[path]!) }
  let merged = model.logits(tokens, batch: 2, length: 8).floats
  for (a, b) in zip(adapted, merged) { #expect(abs(a - b) < 1e-6) }
  for (path, lora) in adapters { lora.unmerge(from: layers[path]!) }
  let unmerged = model.logits(tokens, batch: 2, length: 8).floats
  for (a, b) in zip(adapted, unmerged) { #expect(abs(a - b) < 1e-6) }
}

@Test func onlyTheAdaptersTrain() throws {
  let model = LlamaForCausalLM(small, seed: 1)
  let before = model.namedParameters().map { $0.tensor.scalars }
  attachLoRA(to: model, rank: 2, alpha: 4, seed: 2)
  let trainable = model.trainableParameters()
  #expect(trainable.allSatisfy { $0.name.contains("lora_") })
  #expect(trainable.count == 2 * 4 * 2)
  let tokenizer = Tokenizer(words: (0..<12).map { "w\($0)" })
  let examples = (0..<8).map { Example(prompt: "w\($0) w\($0 + 1)", answer: "w\($0 % 3)") }
  _ = try train(
    parameters: trainable, examples: examples,
    settings: TrainingSettings(steps: 3, batchSize: 4, learningRate: 1e-2),
    loss: { model.loss($0, tokenizer: tokenizer) })
  let base = model.namedParameters().filter { !$0.name.contains("lora_") }.map { $0.tensor.scalars }
  #expect(base == before)
}

@Test func adapterDirectoriesRoundTripBitExactly() throws {
  let model = LlamaForCausalLM(small, seed: 1)
  let adapters = attachLoRA(to: model, rank: 4, alpha: 12, seed: 2)
  var generator = SeededGenerator(seed: 5)
  for (_, lora) in adapters {
    lora.b.weight.assign(Tensor.normal(lora.b.weight.shape, generator: &generator).storage)
  }
  let folder = temporaryFolder("adapter")
  defer { try? FileManager.default.removeItem(at: folder) }
  try LoRAAdapterFile(adapters: adapters, alpha: 12, baseModel: "base").save(to: folder)
  let read = try LoRAAdapterFile.load(from: folder)
  #expect(read.config["target_modules"]!.array!.count == 4)
  #expect(read.config["r"]!.integer == 4)
  let names = try SafeTensorsFile.read(
    from: folder.appendingPathComponent("adapter_model.safetensors")
  ).tensors.keys
  #expect(names.contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"))
  #expect(names.count == 2 * adapters.count)
  let fresh = LlamaForCausalLM(small, seed: 1)
  try read.attach(to: fresh)
  #expect(
    fresh.logits(tokens, batch: 2, length: 8).floats
      == model.logits(tokens, batch: 2, length: 8).floats)
  for ((_, a), (_, b)) in zip(model.loraAdapters(), fresh.loraAdapters()) {
    #expect(
      a.a.weight.floats == b.a.weight.floats && a.b.weight.floats == b.b.weight.floats)
    #expect(a.scale == b.scale)
  }
}

@Test func modelDirectoriesRoundTripBitExactly() throws {
  let folder = temporaryFolder("model")
  defer { try? FileManager.default.removeItem(at: folder) }
  let model = LlamaForCausalLM(small, seed: 4)
  try model.save(to: folder, tokenIds: ["bos_token_id": 2])
  let read = try LlamaForCausalLM.load(from: folder)
  #expect(read.configuration == small)
  for ((name, a), (_, b)) in zip(model.namedParameters(), read.namedParameters()) {
    #expect(a.floats == b.floats, "\(name)")
  }
}

@Test func trainingIsBitwiseIdenticalWhateverRunsItsTasks() throws {
  let tokenizer = Tokenizer(words: (0..<40).map { "w\($0)" })
  let examples = (0..<64).map {
    Example(
      prompt: (0..<6).map { "w\(($0 * 7 + 3) % 40)" }.joined(separator: " ") + " w\($0 % 40)",
      answer: "w\($0 % 5)")
  }
  let configuration = LlamaConfiguration(
    vocabularySize: tokenizer.count, hiddenSize: 64, layers: 2, heads: 2, intermediateSize: 128,
    contextLength: 16)
  func run(threads: Int) throws -> ([Double], [Float]) {
    Parallelism.threadCount = threads
    let model = LlamaForCausalLM(configuration, seed: 7)
    let recipe = ExpertRecipe(
      rank: 4, alpha: 8, targets: attentionProjections,
      training: TrainingSettings(steps: 4, batchSize: 32, learningRate: 1e-2))
    let (adapters, losses) = try recipe.train(model, on: examples, tokenizer: tokenizer, seed: 3)
    return (
      losses, adapters.flatMap { $0.adapter.a.weight.floats + $0.adapter.b.weight.floats }
    )
  }
  let one = try run(threads: 1)
  let two = try run(threads: 2)
  // Tasks run last first: certain to run in another order than one thread's, whether or not
  // the pool was free for the two-thread run.
  Parallelism.reversesTasks = true
  let reversed = try run(threads: 2)
  Parallelism.reversesTasks = false
  Parallelism.threadCount = 2
  #expect(one.0 == two.0 && one.0 == reversed.0)
  #expect(one.1 == two.1 && one.1 == reversed.1)
}

@Test func aNonFiniteLossOrGradientStopsTrainingAndNamesTheStep() {
  let w = Tensor(shape: [2], scalars: [Float(1), 2], requiresGradient: true)
  let examples = [Example(prompt: "a", answer: "b")]
  let settings = TrainingSettings(steps: 5, batchSize: 1, learningRate: 0.1)
  var calls = 0
  #expect(
    throws: TrainingError.nonFinite(
      step: 3, what: "the loss", location: "forward pass: operation 1 of 2 (multiply)")
  ) {
    try train(parameters: [("w", w)], examples: examples, settings: settings) { _ in
      calls += 1
      return (calls == 3 ? (w * Double.nan).sum() : (w * w).sum(), 1)
    }
  }
  // √v has a finite value and an infinite slope at v = 0.
  let v = Tensor(shape: [2], scalars: [Float(0), 1], requiresGradient: true)
  #expect(
    throws: TrainingError.nonFinite(
      step: 1, what: "the gradient of v",
      location: "backward pass: the gradient through operation 1 of 2 (sqrt)")
  ) {
    try train(parameters: [("v", v)], examples: examples, settings: settings) { _ in
      (sqrt(v).sum(), 1)
    }
  }
  #expect(v.floats == [0, 1], "no update from a non-finite gradient")
  #expect(
    TrainingError.nonFinite(
      step: 1, what: "the loss", location: "forward pass: operation 1 of 2 (log)"
    )
    .description
      == "training stopped at step 1: the loss is not finite; it first appears in the forward pass: operation 1 of 2 (log)"
  )
}

@Test func anInterruptedAndResumedRunEndsWithTheSameWeightsBitForBit() throws {
  let tokenizer = Tokenizer(words: (0..<12).map { "w\($0)" })
  let examples = (0..<12).map { Example(prompt: "w\($0) w\(($0 + 5) % 12)", answer: "w\($0 % 3)") }
  let recipe = ExpertRecipe(
    rank: 2, alpha: 4, targets: attentionProjections,
    training: TrainingSettings(steps: 7, batchSize: 4, learningRate: 1e-2))
  let folder = temporaryFolder("checkpoint")
  defer { try? FileManager.default.removeItem(at: folder) }
  let file = folder.appendingPathComponent(TrainingCheckpoint.fileName)
  func weights(_ model: LlamaForCausalLM) -> [[Float]] {
    model.trainableParameters().map(\.tensor.floats)
  }

  let straight = LlamaForCausalLM(small, seed: 1)
  let (_, straightLosses) = try recipe.train(straight, on: examples, tokenizer: tokenizer, seed: 3)

  let interrupted = LlamaForCausalLM(small, seed: 1)
  var steps = 0
  #expect(throws: TrainingError.interrupted(step: 3, file: file.path)) {
    try recipe.train(
      interrupted, on: examples, tokenizer: tokenizer, seed: 3,
      checkpoint: CheckpointPolicy(
        file: file, every: 2,
        shouldStop: {
          steps += 1
          return steps == 3
        }))
  }
  let saved = try TrainingCheckpoint.load(from: file)
  #expect(saved.step == 3 && saved.losses == Array(straightLosses.prefix(3)))

  let resumed = LlamaForCausalLM(small, seed: 1)
  let (_, resumedLosses) = try recipe.train(
    resumed, on: examples, tokenizer: tokenizer, seed: 3,
    checkpoint: CheckpointPolicy(file: file, every: 2, resume: true))
  #expect(resumedLosses == straightLosses)
  #expect(weights(resumed) == weights(straight))
  #expect(weights(interrupted) != weights(straight), "the run really stopped early")
}

@Test func changingTheStepsMovesADefaultWarmupButNotAChosenOne() {
  var settings = TrainingSettings(steps: 1000, learningRate: 1e-3)
  #expect(settings.warmupSteps == 50)
  settings.steps = 2000
  #expect(settings.warmupSteps == 100)
  settings.steps = 10
  #expect(settings.warmupSteps == 1)
  var chosen = TrainingSettings(steps: 1000, learningRate: 1e-3, warmupSteps: 7)
  chosen.steps = 2000
  #expect(chosen.warmupSteps == 7)
}
