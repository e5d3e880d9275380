/// The shape of a Llama-style model: one value type, read from and written to a Hugging
/// Face `config.json`.
public struct LlamaConfiguration: Equatable, Hashable, Sendable {
  /// Tokens in the vocabulary.
  public var vocabularySize: Int
  /// Width of the residual stream.
  public var hiddenSize: Int
  /// Decoder layers.
  public var layers: Int
  /// Attention heads per layer.
  public var heads: Int
  /// Key and value heads (equal to `heads`: grouped-query attention is not implemented).
  public var keyValueHeads: Int
  /// Width of the MLP's hidden layer.
  public var intermediateSize: Int
  /// The longest sequence, in tokens.
  public var contextLength: Int
  /// RMSNorm's ε.
  public var rmsNormEpsilon: Double
  /// The base θ of the rotary embedding's frequencies.
  public var ropeTheta: Double
  /// Whether the output head reuses the token embedding.
  public var tieWordEmbeddings: Bool
  /// Standard deviation of the initial weights.
  public var initializerRange: Double

  /// A configuration; `keyValueHeads` defaults to `heads`.
  public init(
    vocabularySize: Int, hiddenSize: Int, layers: Int, heads: Int, keyValueHeads: Int? = nil,
    intermediateSize: Int, contextLength: Int, rmsNormEpsilon: Double = 1e-5,
    ropeTheta: Double = 10_000, tieWordEmbeddings: Bool = false, initializerRange: Double = 0.02
  ) {
    self.vocabularySize = vocabularySize
    self.hiddenSize = hiddenSize
    self.layers = layers
    self.heads = heads
    self.keyValueHeads = keyValueHeads ?? heads
    self.intermediateSize = intermediateSize
    self.contextLength = contextLength
    self.rmsNormEpsilon = rmsNormEpsilon
    self.ropeTheta = ropeTheta
    self.tieWordEmbeddings = tieWordEmbeddings
    self.initializerRange = initializerRange
  }

  /// Scalars per attention head.
  public var headSize: Int { hiddenSize / heads }

  /// The model of `tinymixer bench train-base`: vocabulary 512, width 128, 4 layers of 4
  /// heads, MLP 384, context 64, separate output head.
  public static let bench = LlamaConfiguration(
    vocabularySize: 512, hiddenSize: 128, layers: 4, heads: 4, intermediateSize: 384,
    contextLength: 64)

  /// The largest model tinymixer builds: 2^30 parameters, 4 GiB of Float32 weights (a
  /// configuration asking for more is refused before anything is allocated).
  public static let maximumParameterCount = 1 << 30

  /// The parameters a model of this shape has, counted without building it, in Double so
  /// that an absurd configuration cannot overflow.
  public var parameterCountWithoutBuilding: Double {
    let (width, vocabulary) = (Double(hiddenSize), Double(vocabularySize))
    let perLayer = linearWeightsPerLayer + 2 * width  // and two RMSNorm gains
    let head = tieWordEmbeddings ? 0 : vocabulary * width
    return vocabulary * width + Double(layers) * perLayer + width + head
  }

  /// The weights of one decoder layer's seven projections: q, k, v, o (width × width each)
  /// and gate, up, down (width × MLP width each).
  var linearWeightsPerLayer: Double {
    let width = Double(hiddenSize)
    return 4 * width * width + 3 * width * Double(intermediateSize)
  }

  /// Why this configuration cannot be built, or nil if it can.
  public var problem: String? {
    if [vocabularySize, hiddenSize, layers, heads, intermediateSize, contextLength].contains(
      where: { $0 <= 0 })
    {
      return "sizes must be positive"
    }
    let count = parameterCountWithoutBuilding
    if count > Double(Self.maximumParameterCount) {
      let shown = count < 9e18 ? String(Int(count)) : "\(count)"
      return
        "the configuration describes \(shown) parameters, more than tinymixer's limit of \(Self.maximumParameterCount)"
    }
    if hiddenSize % heads != 0 {
      return "hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(heads)"
    }
    if headSize % 2 != 0 {
      return "the head size \(headSize) must be even for the rotary embedding"
    }
    if keyValueHeads != heads {
      return
        "num_key_value_heads \(keyValueHeads) differs from num_attention_heads \(heads): grouped-query attention is not supported"
    }
    if !(rmsNormEpsilon > 0) || !(ropeTheta > 0) {
      return "rms_norm_eps and rope_theta must be positive"
    }
    return nil
  }
}

extension LlamaConfiguration {
  /// Floating-point operations of one forward pass over `batch` sequences of `length`:
  /// two per multiply-add of every linear layer and of attention's two products (both
  /// computed in full, the causal mask applied after).
  public func forwardFlops(batch: Int, length: Int) -> Double {
    let tokens = Double(batch * length)
    let width = Double(hiddenSize)
    let linear =
      2 * tokens * (Double(layers) * linearWeightsPerLayer + width * Double(vocabularySize))
    return linear + attentionFlops(batch: batch, length: length)
  }

  /// Attention's share of `forwardFlops`: its two products, `Q·Kᵀ` and `P·V`, in full.
  public func attentionFlops(batch: Int, length: Int) -> Double {
    2 * 2 * Double(batch * layers) * Double(length * length) * Double(hiddenSize)
  }

  /// Floating-point operations of a training step: the forward pass and a backward pass
  /// that costs twice as much (a gradient for the input and one for the weight of every
  /// product).
  public func trainingFlops(batch: Int, length: Int) -> Double {
    3 * forwardFlops(batch: batch, length: length)
  }
}
