import Autodiff
import Kernels
import Random

/// A Llama-style decoder-only transformer with Hugging Face's `LlamaForCausalLM` names:
///
///     tokens → embed_tokens → layers (each: x + attention(norm(x)), then x + mlp(norm(x)))
///            → norm → lm_head → logits
///
/// Build it in Float32 to train and in Float64 to check gradients.
public final class LlamaForCausalLM: Module {
  /// The shape of the model.
  public let configuration: LlamaConfiguration
  /// The token embedding, the decoder layers and the final norm.
  @Child("model") public private(set) var model: LlamaModel
  /// The output head, `[vocabulary, hidden]`; nil when tied to the token embedding.
  @Child("lm_head") public private(set) var lmHead: Linear?

  /// A model with weights drawn from `seed`: normal with standard deviation
  /// `initializerRange` for every matrix, ones for every norm.
  public init(_ configuration: LlamaConfiguration, seed: UInt64 = 0, dtype: DType = .float32) {
    precondition(configuration.problem == nil, "bad configuration: \(configuration.problem!)")
    var generator = SeededGenerator(seed: seed)
    self.configuration = configuration
    super.init()
    model = LlamaModel(configuration, dtype: dtype, generator: &generator)
    lmHead =
      configuration.tieWordEmbeddings
      ? nil
      : Linear(
        projecting: configuration.hiddenSize, to: configuration.vocabularySize, configuration,
        dtype: dtype, generator: &generator)
  }

  /// Next-token logits, `[batch, length, vocabulary]`, for `tokens` given row by row.
  public func logits(_ tokens: [Int], batch: Int, length: Int) -> Tensor {
    outputLogits(
      model(tokens, batch: batch, length: length), head: lmHead, tiedTo: model.embedTokens)
  }

  /// A copy with every weight in `dtype` (Float64 for gradient checks).
  public func converted(to dtype: DType) -> LlamaForCausalLM {
    let copy = LlamaForCausalLM(configuration, dtype: dtype)
    for ((_, source), (_, target)) in zip(namedParameters(), copy.namedParameters()) {
      target.assign(source.converted(to: dtype).storage)
    }
    return copy
  }
}

/// The body of the model: token embedding, decoder layers, final norm.
public final class LlamaModel: Module {
  /// The token embedding.
  @Child("embed_tokens") public private(set) var embedTokens: Embedding
  /// The decoder layers, `layers.0`, `layers.1`, …
  @Child("layers") public private(set) var layers: [DecoderLayer]
  /// The final RMSNorm.
  @Child("norm") public private(set) var norm: RMSNorm
  let configuration: LlamaConfiguration

  init(_ configuration: LlamaConfiguration, dtype: DType, generator: inout SeededGenerator) {
    self.configuration = configuration
    super.init()
    embedTokens = Embedding(
      vocabulary: configuration.vocabularySize, width: configuration.hiddenSize,
      standardDeviation: configuration.initializerRange, dtype: dtype, generator: &generator)
    var layers: [DecoderLayer] = []
    for _ in 0..<configuration.layers {
      layers.append(DecoderLayer(configuration, dtype: dtype, generator: &generator))
    }
    self.layers = layers
    norm = RMSNorm(
      width: configuration.hiddenSize, epsilon: configuration.rmsNormEpsilon, dtype: dtype)
  }

  /// The final hidden states, `[batch, length, hidden]`.
  public func callAsFunction(_ tokens: [Int], batch: Int, length: Int) -> Tensor {
    precondition(tokens.count == batch * length, "\(tokens.count) tokens for \(batch) × \(length)")
    precondition(
      length <= configuration.contextLength,
      "sequence of \(length) exceeds the context of \(configuration.contextLength)")
    var x = embedTokens(tokens, shape: [batch, length])
    for layer in layers { x = layer(x) }
    return norm(x)
  }
}

/// One transformer block: attention, then the MLP, each added to the residual stream
/// after an RMSNorm of its input (pre-norm).
public final class DecoderLayer: Module, Layer {
  /// The norm before attention.
  @Child("input_layernorm") public private(set) var inputNorm: RMSNorm
  /// The attention.
  @Child("self_attn") public private(set) var attention: SelfAttention
  /// The norm before the MLP.
  @Child("post_attention_layernorm") public private(set) var postAttentionNorm: RMSNorm
  /// The MLP.
  @Child("mlp") public private(set) var mlp: MLP

  init(_ configuration: LlamaConfiguration, dtype: DType, generator: inout SeededGenerator) {
    super.init()
    inputNorm = RMSNorm(
      width: configuration.hiddenSize, epsilon: configuration.rmsNormEpsilon, dtype: dtype)
    attention = SelfAttention(configuration, dtype: dtype, generator: &generator)
    postAttentionNorm = RMSNorm(
      width: configuration.hiddenSize, epsilon: configuration.rmsNormEpsilon, dtype: dtype)
    mlp = MLP(configuration, dtype: dtype, generator: &generator)
  }

  /// The block's output for `x` of shape `[batch, length, hidden]`: attention, then the
  /// MLP, each on a normalized input and added back (pre-norm residuals).
  public func callAsFunction(_ x: Tensor) -> Tensor {
    let afterAttention = x + attention(inputNorm(x))
    return afterAttention + mlp(postAttentionNorm(afterAttention))
  }
}

/// Causal multi-head self-attention with rotary position embeddings and no biases.
public final class SelfAttention: Module, Layer {
  /// The projections of queries, keys, values and the output.
  @Child("q_proj") public private(set) var query: Linear
  @Child("k_proj") public private(set) var key: Linear
  @Child("v_proj") public private(set) var value: Linear
  @Child("o_proj") public private(set) var output: Linear
  let heads: Int
  let ropeTheta: Double

  init(_ configuration: LlamaConfiguration, dtype: DType, generator: inout SeededGenerator) {
    heads = configuration.heads
    ropeTheta = configuration.ropeTheta
    super.init()
    let width = configuration.hiddenSize
    func projection() -> Linear {
      Linear(projecting: width, to: width, configuration, dtype: dtype, generator: &generator)
    }
    query = projection()
    key = projection()
    value = projection()
    output = projection()
  }

  /// For `x` of shape `[batch, length, hidden]`.
  public func callAsFunction(_ x: Tensor) -> Tensor {
    let layout = HeadLayout(
      batch: x.shape[0], length: x.shape[1], heads: heads, size: x.shape[2] / heads)
    let q = rotaryEmbedding(query(x), layout: layout, theta: ropeTheta)
    let k = rotaryEmbedding(key(x), layout: layout, theta: ropeTheta)
    return output(causalAttention(query: q, key: k, value: value(x), layout: layout))
  }
}

/// The SwiGLU feed-forward block: `down(silu(gate(x)) ⊙ up(x))`.
public final class MLP: Module, Layer {
  /// The gate, up and down projections.
  @Child("gate_proj") public private(set) var gate: Linear
  @Child("up_proj") public private(set) var up: Linear
  @Child("down_proj") public private(set) var down: Linear
  /// Something that computes this block's output in its place, from the same input and
  /// these frozen projections: MixLoRA's routed experts. Its parameters are its own, not
  /// the block's (the model's file never holds them).
  public var replacement: (any FeedForwardReplacement)?

  init(_ configuration: LlamaConfiguration, dtype: DType, generator: inout SeededGenerator) {
    super.init()
    let width = configuration.hiddenSize
    let inner = configuration.intermediateSize
    gate = Linear(projecting: width, to: inner, configuration, dtype: dtype, generator: &generator)
    up = Linear(projecting: width, to: inner, configuration, dtype: dtype, generator: &generator)
    down = Linear(projecting: inner, to: width, configuration, dtype: dtype, generator: &generator)
  }

  /// `down(silu(gate(x)) ⊙ up(x))` for `x` of shape `[..., hidden]`, or the replacement's
  /// output.
  public func callAsFunction(_ x: Tensor) -> Tensor {
    if let replacement { return replacement.output(of: self, x) }
    return down(swiglu(gate: gate(x), up: up(x)))
  }
}

/// A feed-forward block's output computed in its place (`MLP.replacement`).
public protocol FeedForwardReplacement: AnyObject {
  /// The output for `x` of shape `[..., hidden]`, given the block whose frozen projections
  /// it may use.
  func output(of block: MLP, _ x: Tensor) -> Tensor
}

/// Root-mean-square normalization with a learned scale per feature (initially ones).
public final class RMSNorm: Module, Layer {
  /// The scale, `[width]`.
  public let weight: Tensor
  /// ε, added to the mean square.
  public let epsilon: Double

  /// A norm over rows of `width` with scale ones.
  public init(width: Int, epsilon: Double, dtype: DType = .float32) {
    weight = Tensor.ones([width], dtype: dtype)
    weight.requiresGradient = true
    self.epsilon = epsilon
  }

  override public var ownParameters: [(name: String, tensor: Tensor)] { [("weight", weight)] }

  /// Each row of `x` (`[..., width]`) divided by its root mean square, times the scale.
  public func callAsFunction(_ x: Tensor) -> Tensor { rmsNorm(x, weight: weight, epsilon: epsilon) }
}

extension Linear {
  /// A projection of the Llama model from `inputs` to `outputs` features, initialised as the
  /// configuration says (normal, standard deviation `initializerRange`).
  convenience init(
    projecting inputs: Int, to outputs: Int, _ configuration: LlamaConfiguration, dtype: DType,
    generator: inout SeededGenerator
  ) {
    self.init(
      inputs: inputs, outputs: outputs, standardDeviation: configuration.initializerRange,
      dtype: dtype, generator: &generator)
  }
}
