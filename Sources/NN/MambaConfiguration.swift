import SafeTensors

/// The shape of a Mamba model: one value type, read from and written to a Hugging Face
/// `config.json` (`model_type: "mamba"`).
public struct MambaConfiguration: Equatable, Hashable, Sendable {
  /// Tokens in the vocabulary.
  public var vocabularySize: Int
  /// Width of the residual stream.
  public var hiddenSize: Int
  /// Mamba blocks.
  public var layers: Int
  /// Numbers of state per channel (N).
  public var stateSize: Int
  /// Channels of the mixer, as a multiple of `hiddenSize`.
  public var expand: Int
  /// Taps of the causal convolution.
  public var convolutionKernel: Int
  /// The rank of the step sizes' projection (`time_step_rank`).
  public var timeStepRank: Int
  /// Whether `in_proj` and `out_proj` have biases (`use_bias`).
  public var projectionBias: Bool
  /// Whether the convolution has a bias (`use_conv_bias`).
  public var convolutionBias: Bool
  /// RMSNorm's ε (`layer_norm_epsilon`).
  public var normEpsilon: Double
  /// Whether the output head reuses the token embedding.
  public var tieWordEmbeddings: Bool
  /// Standard deviation of the initial projection and embedding weights.
  public var initializerRange: Double
  /// The longest sequence the tools feed it (a Mamba has no position limit; kept for the
  /// task files' length check).
  public var contextLength: Int

  /// A configuration; `timeStepRank` defaults to Hugging Face's "auto", ⌈hidden / 16⌉.
  public init(
    vocabularySize: Int, hiddenSize: Int, layers: Int, stateSize: Int = 16, expand: Int = 2,
    convolutionKernel: Int = 4, timeStepRank: Int? = nil, projectionBias: Bool = false,
    convolutionBias: Bool = true, normEpsilon: Double = 1e-5, tieWordEmbeddings: Bool = true,
    initializerRange: Double = 0.1, contextLength: Int = 64
  ) {
    self.vocabularySize = vocabularySize
    self.hiddenSize = hiddenSize
    self.layers = layers
    self.stateSize = stateSize
    self.expand = expand
    self.convolutionKernel = convolutionKernel
    self.timeStepRank = timeStepRank ?? (hiddenSize + 15) / 16
    self.projectionBias = projectionBias
    self.convolutionBias = convolutionBias
    self.normEpsilon = normEpsilon
    self.tieWordEmbeddings = tieWordEmbeddings
    self.initializerRange = initializerRange
    self.contextLength = contextLength
  }

  /// Channels of the mixer: `expand · hiddenSize`.
  public var intermediateSize: Int { expand * hiddenSize }

  /// Why this configuration cannot be built, or nil if it can.
  public var problem: String? {
    let sizes = [
      vocabularySize, hiddenSize, layers, stateSize, expand, convolutionKernel, timeStepRank,
      contextLength,
    ]
    if sizes.contains(where: { $0 <= 0 }) { return "sizes must be positive" }
    let width = Double(hiddenSize)
    let inner = Double(intermediateSize)
    let perLayer =
      width * 2 * inner + inner * Double(convolutionKernel + 1)
      + inner * Double(timeStepRank + 2 * stateSize) + Double(timeStepRank + 1) * inner
      + inner * Double(stateSize + 1) + inner * width + width
    let count =
      Double(vocabularySize) * width * (tieWordEmbeddings ? 1 : 2) + Double(layers) * perLayer
    if count > Double(LlamaConfiguration.maximumParameterCount) {
      return "the configuration describes \(Int(count)) parameters, more than tinymixer's limit"
    }
    if !(normEpsilon > 0) { return "layer_norm_epsilon must be positive" }
    return nil
  }

  /// The fields of a Hugging Face `config.json` for `MambaForCausalLM`.
  public func configJSON(tokenIds: [String: Int] = [:]) -> JSON {
    var pairs: [(String, JSON)] = [
      ("architectures", .array([.string("MambaForCausalLM")])), ("model_type", .string("mamba")),
      ("vocab_size", .integer(vocabularySize)), ("hidden_size", .integer(hiddenSize)),
      ("num_hidden_layers", .integer(layers)), ("state_size", .integer(stateSize)),
      ("expand", .integer(expand)), ("intermediate_size", .integer(intermediateSize)),
      ("conv_kernel", .integer(convolutionKernel)), ("time_step_rank", .integer(timeStepRank)),
      ("use_bias", .bool(projectionBias)), ("use_conv_bias", .bool(convolutionBias)),
      ("layer_norm_epsilon", .double(normEpsilon)), ("hidden_act", .string("silu")),
      ("tie_word_embeddings", .bool(tieWordEmbeddings)),
      ("initializer_range", .double(initializerRange)), ("residual_in_fp32", .bool(true)),
      ("max_position_embeddings", .integer(contextLength)), ("torch_dtype", .string("float32")),
    ]
    pairs += tokenIds.keys.sorted().map { ($0, .integer(tokenIds[$0]!)) }
    return .object(pairs)
  }

  /// A configuration from a `config.json`; unknown fields are ignored, Hugging Face's
  /// defaults fill optional ones, and a missing or malformed required field is named.
  public init(configJSON json: JSON, path: String) throws {
    let fields = try ConfigFields(json, path: path, modelType: "mamba")
    if let activation = json["hidden_act"], activation.string != "silu" {
      throw ModelFileError(
        path, "hidden_act is \(activation.compactText); tinymixer's Mamba computes silu only")
    }
    let hidden = try fields.integer("hidden_size")
    // "auto" (or absent) is ⌈hidden / 16⌉, which `init` computes.
    let rank =
      json["time_step_rank"].map { $0.string == "auto" } ?? true
      ? nil : try fields.integer("time_step_rank")
    self.init(
      vocabularySize: try fields.integer("vocab_size"), hiddenSize: hidden,
      layers: try fields.integer("num_hidden_layers"),
      stateSize: try fields.integer("state_size", default: 16),
      expand: try fields.integer("expand", default: 2),
      convolutionKernel: try fields.integer("conv_kernel", default: 4), timeStepRank: rank,
      projectionBias: json["use_bias"]?.bool ?? false,
      convolutionBias: json["use_conv_bias"]?.bool ?? true,
      normEpsilon: try fields.number("layer_norm_epsilon", default: 1e-5),
      tieWordEmbeddings: json["tie_word_embeddings"]?.bool ?? true,
      initializerRange: try fields.number("initializer_range", default: 0.1),
      contextLength: try fields.integer("max_position_embeddings", default: 2048))
    if let problem { throw ModelFileError(path, problem) }
    if let inner = json["intermediate_size"]?.integer, inner != intermediateSize {
      throw ModelFileError(
        path, "intermediate_size \(inner) differs from expand · hidden_size = \(intermediateSize)")
    }
  }
}
