import Autodiff
import Random

/// `y = x · Wᵀ` with `W` of shape `[out, in]` (no bias: Llama's projections have none),
/// plus an adapter's term when one is attached.
public final class Linear: Module, Layer {
  /// `[outputs, inputs]`, the layout of Hugging Face and PyTorch checkpoints.
  public let weight: Tensor
  /// Something added to the output: a LoRA, or a routed mixture of LoRA experts.
  public var adapter: (any LinearAdapter)?

  /// A Linear with `weight` given.
  public init(weight: Tensor) {
    precondition(weight.rank == 2, "a Linear weight is [out, in], got \(weight.shape)")
    self.weight = weight
    weight.requiresGradient = true
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
    [("weight", weight)] + (adapter?.namedParameters() ?? [])
  }

  /// `x · Wᵀ` plus the adapter's term, for `x` of shape `[..., inputs]`.
  public func callAsFunction(_ x: Tensor) -> Tensor {
    let base = matmul(x, weight, transposeB: true)
    guard let adapter else { return base }
    return base + adapter.delta(x)
  }
}

/// A term added to a Linear's output, computed from the same input.
public protocol LinearAdapter: Module {
  /// The term added to `x · Wᵀ`, shaped like it.
  func delta(_ x: Tensor) -> Tensor
}
