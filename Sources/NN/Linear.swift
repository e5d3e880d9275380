import Autodiff
import Random

/// `y = x · Wᵀ (+ b)` with `W` of shape `[out, in]` (Llama's projections have no bias `b`;
/// Mamba's `dt_proj` has one), plus an adapter's term when one is attached.
public final class Linear: Module, Layer {
  /// `[outputs, inputs]`, the layout of Hugging Face and PyTorch checkpoints.
  public let weight: Tensor
  /// `[outputs]`, or nil for no bias.
  public let bias: Tensor?
  /// Something added to the output: a LoRA, or a routed mixture of LoRA experts.
  public var adapter: (any LinearAdapter)?

  /// A Linear with `weight` (and `bias`, if any) given.
  public init(weight: Tensor, bias: Tensor? = nil) {
    precondition(weight.rank == 2, "a Linear weight is [out, in], got \(weight.shape)")
    precondition(bias == nil || bias!.shape == [weight.shape[0]], "a Linear bias is [out]")
    self.weight = weight
    self.bias = bias
    weight.requiresGradient = true
    bias?.requiresGradient = true
  }

  /// A Linear with weights drawn from a normal distribution of `standardDeviation`.
  public convenience init(
    inputs: Int, outputs: Int, standardDeviation: Double = 0.02, dtype: DType = .float32,
    generator: inout SeededGenerator
  ) {
    self.init(
      weight: .normal(
        [outputs, inputs], standardDeviation: standardDeviation, dtype: dtype, generator: &generator
      ))
  }

  /// Inputs per row.
  public var inputs: Int { weight.shape[1] }
  /// Outputs per row.
  public var outputs: Int { weight.shape[0] }

  /// The weight; the adapter's parameters appear here too, as PEFT names them relative to
  /// the layer (`lora_A.weight`).
  override public var ownParameters: [(name: String, tensor: Tensor)] {
    [("weight", weight)] + (bias.map { [("bias", $0)] } ?? []) + (adapter?.namedParameters() ?? [])
  }

  /// `x · Wᵀ (+ b)` plus the adapter's term, for `x` of shape `[..., inputs]`.
  public func callAsFunction(_ x: Tensor) -> Tensor {
    if bias == nil, let output = adapter?.output(x, weight: weight) { return output }
    // The adapter's term first: the backward pass then meets the product with W first, and
    // adds x's gradient through W into the sum so far as it forms it; the terms after it
    // add theirs to that (an adapter's fused output keeps this order and these bits).
    let delta = adapter?.delta(x)
    var base = matmul(x, weight, transposeB: true)
    if let bias { base = base + bias }
    guard let delta else { return base }
    return base + delta
  }
}

/// A term added to a Linear's output, computed from the same input.
public protocol LinearAdapter: Module {
  /// The term added to `x · Wᵀ`, shaped like it.
  func delta(_ x: Tensor) -> Tensor
  /// `x · Wᵀ + delta(x)` as one operation, for an adapter that has one (LoRA's is
  /// `lowRankLinear`); nil, the default, and the layer adds `delta(x)` to its product.
  func output(_ x: Tensor, weight: Tensor) -> Tensor?
}

extension LinearAdapter {
  /// No fused operation: the layer adds `delta(x)` to its own product.
  public func output(_ x: Tensor, weight: Tensor) -> Tensor? { nil }
}
