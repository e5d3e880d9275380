import Autodiff
import NN
import Random
import ToyTasks
import Training

// MixLoRA (Li et al. 2024, TUDB-Labs/MixLoRA), one of the baselines of the LoRA-Mixer
// paper's Table 2: a mixture of experts built inside each feed-forward block, trained
// jointly from scratch on the mixed data. Each expert is the frozen SwiGLU block with its
// own LoRAs on gate_proj, up_proj and down_proj; a router per layer sends every token to
// its top 2 experts (Mixtral's routing: the softmax over all experts, the top 2 kept and
// renormalised); a plain LoRA shared by all tokens sits on the attention projections;
// Mixtral's load-balancing loss weighs 0.001, MixLoRA's default. It cannot route a Mamba:
// a Mamba has no feed-forward block (the paper leaves that row empty).

/// The routed experts of one feed-forward block (MixLoRA): `Σ_{i ∈ top-k} w_i · FFN_i(x)`,
/// where FFN_i is the frozen block with expert i's LoRAs added to its three projections.
public final class FeedForwardExperts: FeedForwardReplacement {
  /// The router, `[experts, hidden]`, reading each token's input to the block.
  public let router: Router
  /// Each expert's LoRAs on gate_proj, up_proj and down_proj.
  public let experts: [(gate: LoRA, up: LoRA, down: LoRA)]
  /// Experts per token.
  public let k: Int
  /// The routings of the forward passes run while `recording`, for the balance loss.
  private(set) var routings: [SiteRouting] = []
  /// Whether forward passes keep their routing (only while a loss is computed).
  var recording = false {
    didSet { routings = [] }
  }

  /// Experts for `block`: `count` of them with LoRAs of `rank` and `alpha` (A as PEFT
  /// draws it, B zero) and a router drawn with MixLoRA's standard deviation 0.02, from
  /// `generator`.
  public init(
    for block: MLP, count: Int, rank: Int, alpha: Double, k: Int = 2,
    generator: inout SeededGenerator
  ) {
    let dtype = block.gate.weight.dtype
    func lora(_ linear: Linear) -> LoRA {
      LoRA(
        inputs: linear.inputs, outputs: linear.outputs, rank: rank, alpha: alpha, dtype: dtype,
        generator: &generator)
    }
    experts = (0..<count).map { _ in (lora(block.gate), lora(block.up), lora(block.down)) }
    router = Router(
      experts: count, inputs: block.gate.inputs, dtype: dtype, generator: &generator)
    self.k = k
  }

  /// The router's and the experts' parameters, named as MixLoRA names them within a layer.
  public var namedParameters: [(name: String, tensor: Tensor)] {
    [("gate.weight", router.weight)]
      + experts.enumerated().flatMap { index, expert in
        [("gate_proj", expert.gate), ("up_proj", expert.up), ("down_proj", expert.down)]
          .flatMap { name, lora in
            lora.namedParameters().map { ("experts.\(index).\(name).\($0.name)", $0.tensor) }
          }
      }
  }

  /// Each token through its top-k experts, weighted: only the tokens that chose an expert
  /// run through it.
  public func output(of block: MLP, _ x: Tensor) -> Tensor {
    let rows = x.reshaped([-1, x.shape.last!])
    let routing = router.route(
      rows, settings: RoutingSettings(mode: .topk, input: .token, k: k), training: true)
    if recording { routings.append(routing) }
    let mixed = mixSelectedExperts(
      rows, routing, experts: experts.count, width: block.down.outputs
    ) { index, input in
      let expert = experts[index]
      let gate = block.gate(input) + expert.gate.delta(input)
      let up = block.up(input) + expert.up.delta(input)
      let hidden = swiglu(gate: gate, up: up)
      return block.down(hidden) + expert.down.delta(hidden)
    }
    return mixed.reshaped(Array(x.shape.dropLast()) + [block.down.outputs])
  }
}

/// How MixLoRA is trained: its experts, routers and attention LoRA together, from scratch,
/// on every task's training examples mixed.
public struct FeedForwardExpertsRecipe: Equatable, Hashable, Sendable {
  /// Experts per feed-forward block: as many as there are tasks, unless set.
  public var experts: Int? = nil
  /// The rank of every LoRA (the experts' and the attention's): a stage-1 expert's.
  public var rank = ExpertRecipe.standard.rank
  /// The alpha of every LoRA: a stage-1 expert's.
  public var alpha = ExpertRecipe.standard.alpha
  /// Experts per token: MixLoRA's 2.
  public var k = 2
  /// The weight of Mixtral's load-balancing loss: MixLoRA's default, 0.001.
  public var balanceWeight = 0.001
  /// The projections with a plain shared LoRA: the attention's.
  public var attentionTargets = attentionProjections
  /// The training: a stage-1 expert's settings, in length groups as the mixed batches are.
  public var training: TrainingSettings = {
    var settings = ExpertRecipe.standard.training
    settings.lengthGroups = MixRecipe().training.lengthGroups
    return settings
  }()

  /// The defaults above.
  public init() {}
}

/// A frozen Llama with MixLoRA: routed LoRA experts in every feed-forward block and a
/// shared LoRA on the attention projections, all trained together.
public final class FeedForwardMixture {
  /// The model.
  public let model: LlamaForCausalLM
  /// The routed experts of each decoder layer's feed-forward block.
  public let blocks: [FeedForwardExperts]
  /// The shared attention LoRAs, by layer path.
  public let attention: [(path: String, adapter: LoRA)]
  /// The recipe it was built by.
  public let recipe: FeedForwardExpertsRecipe

  /// MixLoRA on `model` with `experts` experts per block, drawn from `seed`.
  public init(
    model: LlamaForCausalLM, experts: Int, recipe: FeedForwardExpertsRecipe, seed: UInt64
  ) {
    self.model = model
    self.recipe = recipe
    model.detachAdapters()
    attention = attachLoRA(
      to: model, targets: recipe.attentionTargets, rank: recipe.rank, alpha: recipe.alpha,
      seed: seed)
    var generator = SeededGenerator(seed: seed &+ 1)
    blocks = model.model.layers.map { layer in
      let block = FeedForwardExperts(
        for: layer.mlp, count: experts, rank: recipe.rank, alpha: recipe.alpha, k: recipe.k,
        generator: &generator)
      layer.mlp.replacement = block
      return block
    }
  }

  /// Every trained parameter: the attention LoRAs, then each layer's router and experts.
  public func trainedParameters() -> [(name: String, tensor: Tensor)] {
    attention.flatMap { path, lora in
      lora.namedParameters().map { ("\(path).\($0.name)", $0.tensor) }
    }
      + blocks.enumerated().flatMap { layer, block in
        block.namedParameters.map { ("model.layers.\(layer).mlp.\($0.name)", $0.tensor) }
      }
  }

  /// Mixtral's load-balancing loss of one block's routing over the rows `tokens`:
  /// `E · Σ_i P_i · Σ_slots f_slot,i`, with P_i the mean probability of expert i and
  /// f_slot,i the share of tokens whose slot picked it. That is k times tinymixer's balance
  /// term (which shares each token's load over its k slots): 1·k when even.
  public static func balanceLoss(_ routing: SiteRouting, tokens: [Int]?, experts: Int) -> Tensor {
    balanceTerm(routing, tokens: tokens, experts: experts) * Double(routing.k)
  }

  /// The loss of `examples`: the answers' cross-entropy plus the balance loss's weight
  /// times its mean over the blocks (real tokens only). Returns the parts and the tokens.
  public func loss(_ examples: [Example], tokenizer: Tokenizer) -> (
    value: Tensor, task: Double, balance: Double, tokens: Int
  ) {
    for block in blocks { block.recording = true }
    defer { for block in blocks { block.recording = false } }
    let batches = tokenizer.answerBatches(examples, groups: recipe.training.lengthGroups)
    let task = model.weightedLoss(batches)
    let real = batches.map(Mixture.realTokens)
    let scored = Double(real.reduce(0) { $0 + $1.count })
    var balance: Tensor? = nil
    for block in blocks {
      for (routing, tokens) in zip(block.routings, real) {
        let term =
          Self.balanceLoss(routing, tokens: tokens, experts: block.experts.count)
          * (Double(tokens.count) / scored / Double(blocks.count))
        balance = balance.map { $0 + term } ?? term
      }
    }
    return (
      task + balance! * recipe.balanceWeight, task.item, balance!.item,
      batches.reduce(0) { $0 + $1.tokens.count }
    )
  }

  /// Trains everything on `examples` in the order `seed` draws; returns the task loss of
  /// every step.
  @discardableResult
  public func train(
    on examples: [Example], tokenizer: Tokenizer, seed: UInt64,
    report: (StepReport) -> Void = { _ in }
  ) throws -> [Double] {
    try trainReportingTaskLoss(
      parameters: trainedParameters(), examples: examples, settings: recipe.training, seed: seed,
      loss: { batch in
        let loss = self.loss(batch, tokenizer: tokenizer)
        return (loss.value, loss.task, loss.tokens)
      }, report: report)
  }
}
