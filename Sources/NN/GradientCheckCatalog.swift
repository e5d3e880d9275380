import Autodiff
import Kernels

extension GradientCheckCase {
  /// The NN module's fused operations and their primitive references, the attention and
  /// MLP blocks with respect to inputs and weights, and a whole tiny model's loss with
  /// respect to every parameter.
  public static var layers: [GradientCheckCase] {
    let layout = HeadLayout(batch: 2, length: 3, heads: 2, size: 4)
    let heads: [Int] = [2, 3, 8]
    // x, W, A (rank 2) and B of a layer of 5 inputs and 4 outputs.
    let lowRankInputs: [([Int], TestValues)] = [
      ([2, 3, 5], .signed), ([4, 5], .signed), ([2, 5], .signed), ([4, 2], .signed),
    ]
    var cases: [GradientCheckCase] = [
      .on("rmsnorm (fused)", [([2, 3, 4], .signed), ([4], .signed)]) {
        rmsNorm($0[0], weight: $0[1], epsilon: 1e-5)
      },
      .on("rmsnorm (reference)", [([2, 3, 4], .signed), ([4], .signed)]) {
        rmsNormReference($0[0], weight: $0[1], epsilon: 1e-5)
      },
      .on("rotary embedding (fused)", [(heads, .signed)]) {
        rotaryEmbedding($0[0], layout: layout, theta: 10)
      },
      .on("rotary embedding (reference)", [(heads, .signed)]) {
        rotaryEmbeddingReference($0[0], layout: layout, theta: 10)
      },
      .on("causal attention (fused)", [(heads, .signed), (heads, .signed), (heads, .signed)]) {
        causalAttention(query: $0[0], key: $0[1], value: $0[2], layout: layout)
      },
      .on("causal attention (reference)", [(heads, .signed), (heads, .signed), (heads, .signed)]) {
        causalAttentionReference(query: $0[0], key: $0[1], value: $0[2], layout: layout)
      },
      .on("swiglu (fused)", [([2, 5], .signed), ([2, 5], .signed)]) {
        swiglu(gate: $0[0], up: $0[1])
      },
      .on("swiglu (reference)", [([2, 5], .signed), ([2, 5], .signed)]) {
        swigluReference(gate: $0[0], up: $0[1])
      },
      .on("low-rank linear (fused)", lowRankInputs) {
        lowRankLinear($0[0], weight: $0[1], a: $0[2], b: $0[3], scale: 1.5)
      },
      .on("low-rank linear (reference)", lowRankInputs) {
        lowRankLinearReference($0[0], weight: $0[1], a: $0[2], b: $0[3], scale: 1.5)
      },
    ]
    // The selective scan with respect to x, Δ (positive), A, B, C and D; and the causal
    // convolution with respect to x, its taps and its bias.
    let scanInputs: [([Int], TestValues)] = [
      ([2, 4, 3], .signed), ([2, 4, 3], .positive), ([3, 2], .signed), ([2, 4, 2], .signed),
      ([2, 4, 2], .signed), ([3], .signed),
    ]
    let convolutionInputs: [([Int], TestValues)] = [
      ([2, 5, 3], .signed), ([3, 3], .signed), ([3], .signed),
    ]
    cases += [
      .on("selective scan (fused; x, Δ, A, B, C, D)", scanInputs) { t in
        selectiveScan(x: t[0], delta: t[1], a: t[2], b: t[3], c: t[4], d: t[5])
      },
      .on("selective scan (reference)", scanInputs) { t in
        selectiveScanReference(x: t[0], delta: t[1], a: t[2], b: t[3], c: t[4], d: t[5])
      },
      .on("causal convolution (fused; x, taps, bias)", convolutionInputs) { t in
        causalConvolution(t[0], weight: t[1], bias: t[2])
      },
      .on("causal convolution (reference)", convolutionInputs) { t in
        causalConvolutionReference(t[0], weight: t[1], bias: t[2])
      },
    ]
    cases.append(
      .on(
        "swiglu mlp block",
        [([2, 2, 4], .signed), ([6, 4], .signed), ([6, 4], .signed), ([4, 6], .signed)]
      ) { t in
        Linear(weight: t[3])(
          swiglu(gate: Linear(weight: t[1])(t[0]), up: Linear(weight: t[2])(t[0])))
      })
    cases.append(
      .on(
        "self-attention block (rotary, causal)",
        [
          ([2, 3, 8], .signed), ([8, 8], .signed), ([8, 8], .signed), ([8, 8], .signed),
          ([8, 8], .signed),
        ]
      ) { t in
        let q = rotaryEmbedding(Linear(weight: t[1])(t[0]), layout: layout, theta: 10)
        let k = rotaryEmbedding(Linear(weight: t[2])(t[0]), layout: layout, theta: 10)
        let v = Linear(weight: t[3])(t[0])
        return Linear(weight: t[4])(causalAttention(query: q, key: k, value: v, layout: layout))
      })
    cases.append(tinyModelLoss(tied: false))
    cases.append(tinyModelLoss(tied: true))
    cases.append(mambaBlock())
    cases.append(tinyMambaLoss())
    return cases
  }

  /// The configuration of the tiny model checked here.
  public static func tinyConfiguration(tied: Bool) -> LlamaConfiguration {
    LlamaConfiguration(
      vocabularySize: 11, hiddenSize: 8, layers: 2, heads: 2, intermediateSize: 12,
      contextLength: 6,
      tieWordEmbeddings: tied, initializerRange: 0.5)
  }

  /// A masked next-token loss of a tiny model (Llama or Mamba; vocabulary 11, context 6)
  /// on a fixed batch of two sequences, some positions left out.
  public static func tinyLoss(_ model: any CausalLanguageModel) -> Tensor {
    let tokens = [1, 5, 2, 9, 4, 3, 7, 0, 10, 6, 8, 2]
    let targets = [5, 2, 9, 4, 3, 1, 0, 10, 6, 8, 2, 4]
    let mask = [false, true, true, true, true, false, true, true, false, true, true, true]
    return model.loss(tokens: tokens, targets: targets, mask: mask, batch: 2, length: 6)
  }

  /// The tiny model's masked next-token loss with respect to every parameter.
  static func tinyModelLoss(tied: Bool) -> GradientCheckCase {
    let configuration = tinyConfiguration(tied: tied)
    let shapes = LlamaForCausalLM(configuration, dtype: .float64).namedParameters().map(
      \.tensor.shape)
    return GradientCheckCase(
      "whole model loss (\(tied ? "tied" : "separate") head)", parameterShapes: shapes,
      method: .randomProjections(count: 2)
    ) {
      let model = LlamaForCausalLM(configuration, seed: 3, dtype: .float64)
      for (_, norm) in model.namedParameters() where norm.rank == 1 {
        // Norm scales away from 1, so their gradients are not special.
        norm.assign(.float64(norm.doubles.enumerated().map { 1 + 0.1 * Double($0.offset % 5) }))
      }
      return (model.namedParameters().map(\.tensor), { tinyLoss(model) })
    }
  }

  /// A tiny Float64 Mamba (vocabulary 11, width 8, two blocks, state 3, 3 taps, a
  /// separate head), its norm scales and D away from 1.
  public static func tinyMamba(seed: UInt64 = 3) -> MambaForCausalLM {
    let model = MambaForCausalLM(
      MambaConfiguration(
        vocabularySize: 11, hiddenSize: 8, layers: 2, stateSize: 3, convolutionKernel: 3,
        tieWordEmbeddings: false, initializerRange: 0.5),
      seed: seed, dtype: .float64)
    for (name, parameter) in model.namedParameters()
    where name.hasSuffix("norm.weight") || name.hasSuffix("norm_f.weight") || name.hasSuffix(".D") {
      parameter.assign(
        .float64(parameter.doubles.enumerated().map { 1 + 0.1 * Double($0.offset % 5) }))
    }
    return model
  }

  /// One Mamba block with respect to its input and every weight of its mixer and norm.
  static func mambaBlock() -> GradientCheckCase {
    let shapes = [[2, 4, 8]] + tinyMamba().backbone.layers[0].namedParameters().map(\.tensor.shape)
    return GradientCheckCase(
      "mamba block (input, norm, in/x/dt/out projections, conv, A_log, D)",
      parameterShapes: shapes, method: .randomProjections(count: 2)
    ) {
      let block = tinyMamba().backbone.layers[0]
      let input = TestValues.signed.tensor([2, 4, 8], seed: 1)
      input.requiresGradient = true
      return ([input] + block.namedParameters().map(\.tensor), { block(input) })
    }
  }

  /// The tiny Mamba's masked next-token loss with respect to every parameter.
  static func tinyMambaLoss() -> GradientCheckCase {
    GradientCheckCase(
      "whole mamba loss (every parameter)",
      parameterShapes: tinyMamba().namedParameters().map(\.tensor.shape),
      method: .randomProjections(count: 2)
    ) {
      let model = tinyMamba()
      return (model.namedParameters().map(\.tensor), { tinyLoss(model) })
    }
  }
}
