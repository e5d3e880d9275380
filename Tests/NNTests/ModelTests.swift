import Autodiff
import SafeTensors
import Testing

@testable import Kernels
@testable import NN

let tiny = LlamaConfiguration(
  vocabularySize: 13, hiddenSize: 16, layers: 2, heads: 2, intermediateSize: 24, contextLength: 8)

@Test func parametersHaveHuggingFaceNames() {
  let names = LlamaForCausalLM(tiny).namedParameters().map(\.name)
  #expect(names.first == "model.embed_tokens.weight")
  #expect(names.contains("model.layers.1.self_attn.q_proj.weight"))
  #expect(names.contains("model.layers.0.mlp.down_proj.weight"))
  #expect(names.contains("model.layers.0.input_layernorm.weight"))
  #expect(names.contains("model.layers.1.post_attention_layernorm.weight"))
  #expect(names.suffix(2) == ["model.norm.weight", "lm_head.weight"])
  #expect(names.count == 1 + 2 * 9 + 2)
  var tied = tiny
  tied.tieWordEmbeddings = true
  #expect(!LlamaForCausalLM(tied).namedParameters().map(\.name).contains("lm_head.weight"))
}

@Test func initializationIsDeterministicPerSeed() {
  let a = LlamaForCausalLM(tiny, seed: 1)
  let b = LlamaForCausalLM(tiny, seed: 1)
  let c = LlamaForCausalLM(tiny, seed: 2)
  let weights = { (model: LlamaForCausalLM) in model.namedParameters().flatMap(\.tensor.scalars) }
  #expect(weights(a) == weights(b))
  #expect(weights(a) != weights(c))
}

@Test func float32AndFloat64ModelsAgree() {
  let model = LlamaForCausalLM(tiny, seed: 5)
  let tokens = (0..<16).map { $0 % 13 }
  let single = model.logits(tokens, batch: 2, length: 8).scalars
  let double = model.converted(to: .float64).logits(tokens, batch: 2, length: 8).scalars
  #expect(zip(single, double).allSatisfy { abs($0 - $1) < 1e-5 })
}

@Test func frozenModelGivesNoWeightGradients() {
  let model = LlamaForCausalLM(tiny)
  model.setTrainable(false)
  #expect(model.trainableParameters().isEmpty)
  let tape = Tape()
  let loss = tape.record {
    model.loss(
      tokens: [1, 2, 3, 4], targets: [2, 3, 4, 5], mask: [true, true, true, true], batch: 1,
      length: 4)
  }
  #expect(tape.count == 0)
  #expect(loss.item > 0)
}

@Test func aTinyModelMemorizesABatch() {
  let model = LlamaForCausalLM(tiny, seed: 2)
  let optimizer = AdamW(parameters: model.namedParameters().map(\.tensor), weightDecay: 0)
  let tokens = [1, 4, 7, 2, 9, 3, 5, 8, 2, 6, 10, 1, 3, 12, 4, 11]
  let targets = Array(tokens.dropFirst()) + [0]
  let mask = (0..<16).map { $0 % 8 != 7 }
  var losses: [Double] = []
  for _ in 0..<60 {
    let (loss, gradients) = valueAndGradients(of: optimizer.parameters) {
      model.loss(tokens: tokens, targets: targets, mask: mask, batch: 2, length: 8)
    }
    losses.append(loss.item)
    optimizer.update(gradients, learningRate: 1e-2)
  }
  #expect(losses.first! > 2.0)
  #expect(losses.last! < 0.1, "losses \(losses)")
}

@Test func lossAndGradientsAreBitwiseIdenticalWhateverRunsTheirTasks() {
  // Large enough that matmuls and elementwise kernels split work across threads.
  let configuration = LlamaConfiguration(
    vocabularySize: 64, hiddenSize: 128, layers: 1, heads: 4, intermediateSize: 256,
    contextLength: 64)
  let model = LlamaForCausalLM(configuration, seed: 9)
  // Eight different sequences (the same one eight times would make every chunk of rows
  // alike, and a sum over chunks the same in any order).
  let tokens = (0..<512).map { ($0 * 7 + ($0 / 64) * 5) % 64 }
  func run() -> [Double] {
    let (loss, gradients) = valueAndGradients(of: model.namedParameters().map(\.tensor)) {
      model.loss(
        tokens: tokens, targets: tokens.map { ($0 + 1) % 64 },
        mask: [Bool](repeating: true, count: 512), batch: 8, length: 64)
    }
    return [loss.item] + gradients.flatMap(\.scalars)
  }
  Parallelism.threadCount = 1
  let one = run()
  Parallelism.threadCount = 2
  let two = run()
  // Counted, not compared whole: a failure prints the count, not a million numbers.
  func differences(_ a: [Double], _ b: [Double]) -> Int {
    zip(a, b).count { $0 != $1 } + abs(a.count - b.count)
  }
  #expect(differences(one, two) == 0, "one and two threads")
  // Whether the second run used a second thread depends on the pool being free; tasks run
  // last first are certain to run in another order than one thread's.
  Parallelism.reversesTasks = true
  let reversed = run()
  Parallelism.reversesTasks = false
  #expect(differences(one, reversed) == 0, "tasks in reverse order")
}

@Test func parametersAreCountedWithoutBuildingTheModel() {
  var tied = tiny
  tied.tieWordEmbeddings = true
  for configuration in [tiny, tied, LlamaConfiguration.bench] {
    let built = LlamaForCausalLM(configuration).parameterCount
    #expect(configuration.parameterCountWithoutBuilding == Double(built))
  }
}

@Test func aConfigurationBeyondTheParameterLimitIsRefusedBeforeAllocating() throws {
  let text = tiny.configJSON(tokenIds: [:]).compactText
  let json = try JSON.parse(
    text.replacingOccurrences(of: "\"vocab_size\":13", with: "\"vocab_size\":1000000000000"))
  #expect(json["vocab_size"]?.integer == 1_000_000_000_000)
  let error = #expect(throws: ModelFileError.self) {
    try LlamaConfiguration(configJSON: json, path: "config.json")
  }
  #expect(error?.message.contains("more than tinymixer's limit of 1073741824") == true)
}

@Test func zeroHeadsBesideAHeadSizeAreRefusedNotDividedBy() throws {
  let text = tiny.configJSON(tokenIds: [:]).compactText
  let heads = "\"num_attention_heads\":\(tiny.heads)"
  #expect(text.contains(heads) && text.contains("\"head_dim\""))
  let json = try JSON.parse(text.replacingOccurrences(of: heads, with: "\"num_attention_heads\":0"))
  let error = #expect(throws: ModelFileError.self) {
    try LlamaConfiguration(configJSON: json, path: "config.json")
  }
  #expect(error?.message.contains("sizes must be positive") == true, "\(String(describing: error))")
}

@Test(arguments: [
  ("\"hidden_act\":\"silu\"", "\"hidden_act\":\"gelu\"", "hidden_act is \"gelu\""),
  ("\"mlp_bias\":false", "\"mlp_bias\":true", "mlp_bias is true"),
  ("\"attention_bias\":false", "\"attention_bias\":true", "attention_bias is true"),
  (
    "\"mlp_bias\":false", "\"mlp_bias\":false,\"rope_scaling\":{\"factor\":2}",
    "rope_scaling is set"
  ),
])
func fieldsThatChangeTheComputationAreRefusedNotIgnored(
  _ replacing: (String, String, String)
) throws {
  let (field, changed, message) = replacing
  let text = tiny.configJSON(tokenIds: [:]).compactText
  #expect(text.contains(field), "\(text)")
  let json = try JSON.parse(text.replacingOccurrences(of: field, with: changed))
  let error = #expect(throws: ModelFileError.self) {
    try LlamaConfiguration(configJSON: json, path: "config.json")
  }
  #expect(error?.message.contains(message) == true, "\(String(describing: error))")
  // The fields as tinymixer writes them, and rope_scaling null, are read.
  let plain = try JSON.parse(
    text.replacingOccurrences(
      of: "\"mlp_bias\":false", with: "\"mlp_bias\":false,\"rope_scaling\":null"))
  #expect(try LlamaConfiguration(configJSON: plain, path: "config.json") == tiny)
}
