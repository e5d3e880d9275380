import Autodiff
import Foundation
import Random

/// A Mamba language model with Hugging Face's `MambaForCausalLM` names:
///
///     tokens → embeddings → layers (each: x + mixer(norm(x))) → norm_f → lm_head → logits
///
/// where each mixer is a gated selective state-space layer (`MambaMixer`) in place of
/// attention and MLP. Build it in Float32 to train and in Float64 to check gradients.
public final class MambaForCausalLM: Module {
  /// The shape of the model.
  public let configuration: MambaConfiguration
  /// The token embedding, the blocks and the final norm.
  @Child("backbone") public private(set) var backbone: MambaModel
  /// The output head, `[vocabulary, hidden]`; nil when tied to the token embedding.
  @Child("lm_head") public private(set) var lmHead: Linear?

  /// A model with weights drawn from `seed` (`MambaMixer` says how each is initialised).
  public init(_ configuration: MambaConfiguration, seed: UInt64 = 0, dtype: DType = .float32) {
    precondition(configuration.problem == nil, "bad configuration: \(configuration.problem!)")
    var generator = SeededGenerator(seed: seed)
    self.configuration = configuration
    super.init()
    backbone = MambaModel(configuration, dtype: dtype, generator: &generator)
    lmHead =
      configuration.tieWordEmbeddings
      ? nil
      : Linear(
        inputs: configuration.hiddenSize, outputs: configuration.vocabularySize,
        standardDeviation: configuration.initializerRange, dtype: dtype, generator: &generator)
  }

  /// Next-token logits, `[batch, length, vocabulary]`, for `tokens` given row by row.
  public func logits(_ tokens: [Int], batch: Int, length: Int) -> Tensor {
    outputLogits(
      backbone(tokens, batch: batch, length: length), head: lmHead, tiedTo: backbone.embeddings)
  }
}

/// The body of the model: token embedding, Mamba blocks, final norm.
public final class MambaModel: Module {
  /// The token embedding.
  @Child("embeddings") public private(set) var embeddings: Embedding
  /// The blocks, `layers.0`, `layers.1`, …
  @Child("layers") public private(set) var layers: [MambaBlock]
  /// The final RMSNorm.
  @Child("norm_f") public private(set) var normF: RMSNorm

  init(_ configuration: MambaConfiguration, dtype: DType, generator: inout SeededGenerator) {
    super.init()
    embeddings = Embedding(
      vocabulary: configuration.vocabularySize, width: configuration.hiddenSize,
      standardDeviation: configuration.initializerRange, dtype: dtype, generator: &generator)
    var layers: [MambaBlock] = []
    for _ in 0..<configuration.layers {
      layers.append(MambaBlock(configuration, dtype: dtype, generator: &generator))
    }
    self.layers = layers
    normF = RMSNorm(
      width: configuration.hiddenSize, epsilon: configuration.normEpsilon, dtype: dtype)
  }

  /// The final hidden states, `[batch, length, hidden]`.
  public func callAsFunction(_ tokens: [Int], batch: Int, length: Int) -> Tensor {
    precondition(tokens.count == batch * length, "\(tokens.count) tokens for \(batch) × \(length)")
    var x = embeddings(tokens, shape: [batch, length])
    for layer in layers { x = layer(x) }
    return normF(x)
  }
}

/// One block: the mixer on a normalized copy of the residual stream, added back.
public final class MambaBlock: Module, Layer {
  /// The norm before the mixer.
  @Child("norm") public private(set) var norm: RMSNorm
  /// The mixer.
  @Child("mixer") public private(set) var mixer: MambaMixer

  init(_ configuration: MambaConfiguration, dtype: DType, generator: inout SeededGenerator) {
    super.init()
    norm = RMSNorm(
      width: configuration.hiddenSize, epsilon: configuration.normEpsilon, dtype: dtype)
    mixer = MambaMixer(configuration, dtype: dtype, generator: &generator)
  }

  /// `x + mixer(norm(x))` for `x` of shape `[batch, length, hidden]`.
  public func callAsFunction(_ x: Tensor) -> Tensor { x + mixer(norm(x)) }
}

/// Mamba's mixer (Gu and Dao 2023, as Hugging Face's `MambaMixer` computes it):
///
///     x, z = in_proj(h)                          two halves of `intermediate` channels
///     x = silu(conv1d(x))                        causal, depthwise
///     Δ', B, C = x_proj(x)                       Δ' of `time_step_rank`, B and C of `state`
///     Δ = softplus(dt_proj(Δ'))                  a positive step size per channel
///     y = selectiveScan(x, Δ, A = −exp(A_log), B, C, D) ⊙ silu(z)
///     out_proj(y)
///
/// The four projections are where LoRA experts and routed sites go; A, D and the
/// convolution carry none.
public final class MambaMixer: Module, Layer {
  /// `hidden → 2 · intermediate`: the scan's input and its gate.
  @Child("in_proj") public private(set) var inProjection: Linear
  /// The causal convolution over each channel.
  @Child("conv1d") public private(set) var convolution: CausalConvolution
  /// `intermediate → time_step_rank + 2 · state`: Δ', B and C.
  @Child("x_proj") public private(set) var xProjection: Linear
  /// `time_step_rank → intermediate`, with a bias: the step sizes before softplus.
  @Child("dt_proj") public private(set) var dtProjection: Linear
  /// `intermediate → hidden`.
  @Child("out_proj") public private(set) var outProjection: Linear
  /// log(−A), `[intermediate, state]`.
  public let aLog: Tensor
  /// D, `[intermediate]`: how much of x passes straight through.
  public let d: Tensor
  let configuration: MambaConfiguration

  /// Initialised as Hugging Face's Mamba: projections normal(`initializerRange`); `A_log`
  /// = log(1 … state) for every channel; D = 1; `dt_proj` weight uniform in ±rank^−½ and
  /// its bias the inverse softplus of step sizes spread log-uniformly over [0.001, 0.1];
  /// convolution taps uniform in ±1/√kernel (PyTorch's default), bias 0.
  init(_ configuration: MambaConfiguration, dtype: DType, generator: inout SeededGenerator) {
    self.configuration = configuration
    let (width, inner, rank, state) = (
      configuration.hiddenSize, configuration.intermediateSize, configuration.timeStepRank,
      configuration.stateSize
    )
    aLog = Tensor(
      shape: [inner, state],
      scalars: (0..<inner * state).map { Foundation.log(Double($0 % state + 1)) }, dtype: dtype)
    d = Tensor.ones([inner], dtype: dtype)
    aLog.requiresGradient = true
    d.requiresGradient = true
    super.init()
    func linear(_ inputs: Int, _ outputs: Int, bias: Bool) -> Linear {
      let weight = Tensor.normal(
        [outputs, inputs], standardDeviation: configuration.initializerRange, dtype: dtype,
        generator: &generator)
      return Linear(weight: weight, bias: bias ? .zeros([outputs], dtype: dtype) : nil)
    }
    inProjection = linear(width, 2 * inner, bias: configuration.projectionBias)
    convolution = CausalConvolution(
      channels: inner, kernel: configuration.convolutionKernel, bias: configuration.convolutionBias,
      dtype: dtype, generator: &generator)
    xProjection = linear(inner, rank + 2 * state, bias: false)
    let bound = 1 / Double(rank).squareRoot()
    let steps = (0..<inner).map { _ in
      Foundation.exp(
        generator.nextUniform() * (Foundation.log(0.1) - Foundation.log(0.001))
          + Foundation.log(0.001))
    }
    dtProjection = Linear(
      weight: .uniform(
        [inner, rank], low: -bound, high: bound, dtype: dtype, generator: &generator),
      bias: Tensor(
        shape: [inner], scalars: steps.map { $0 + Foundation.log(-Foundation.expm1(-$0)) },
        dtype: dtype))
    outProjection = linear(inner, width, bias: configuration.projectionBias)
  }

  override public var ownParameters: [(name: String, tensor: Tensor)] {
    [("A_log", aLog), ("D", d)]
  }

  /// The mixer's output for `h` of shape `[batch, length, hidden]`.
  public func callAsFunction(_ h: Tensor) -> Tensor {
    let (inner, rank, state) = (
      configuration.intermediateSize, configuration.timeStepRank, configuration.stateSize
    )
    let halves = inProjection(h).split(along: -1, sizes: [inner, inner])
    let x = silu(convolution(halves[0]))
    let parts = xProjection(x).split(along: -1, sizes: [rank, state, state])
    let delta = softplus(dtProjection(parts[0]))
    let y = selectiveScan(x: x, delta: delta, a: -exp(aLog), b: parts[1], c: parts[2], d: d)
    return outProjection(y * silu(halves[1]))
  }
}

/// Mamba's `conv1d`: a causal depthwise convolution whose weight is stored as PyTorch's
/// `Conv1d` stores it, `[channels, 1, kernel]`.
public final class CausalConvolution: Module, Layer {
  /// `[channels, 1, kernel]`.
  public let weight: Tensor
  /// `[channels]`, or nil.
  public let bias: Tensor?

  /// Taps uniform in ±1/√kernel and a zero bias (if any), as PyTorch initialises a
  /// depthwise `Conv1d`.
  init(channels: Int, kernel: Int, bias: Bool, dtype: DType, generator: inout SeededGenerator) {
    let bound = 1 / Double(kernel).squareRoot()
    weight = .uniform(
      [channels, 1, kernel], low: -bound, high: bound, dtype: dtype, generator: &generator)
    self.bias = bias ? .zeros([channels], dtype: dtype) : nil
    weight.requiresGradient = true
    self.bias?.requiresGradient = true
  }

  override public var ownParameters: [(name: String, tensor: Tensor)] {
    [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
  }

  /// For `x` of shape `[batch, length, channels]`.
  public func callAsFunction(_ x: Tensor) -> Tensor {
    causalConvolution(
      x, weight: weight.reshaped([weight.shape[0], weight.shape[2]]), bias: bias)
  }
}
