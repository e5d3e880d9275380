import Autodiff
import Random

/// A table of one vector per token: `embedding(tokens)` picks rows.
public final class Embedding: Module {
  /// `[vocabulary, width]`.
  public let weight: Tensor

  /// An embedding with `weight` given.
  public init(weight: Tensor) {
    precondition(
      weight.rank == 2, "an Embedding weight is [vocabulary, width], got \(weight.shape)")
    self.weight = weight
    weight.requiresGradient = true
  }

  /// An embedding with rows drawn from a normal distribution of `standardDeviation`.
  public convenience init(
    vocabulary: Int, width: Int, standardDeviation: Double = 0.02, dtype: DType = .float32,
    generator: inout SeededGenerator
  ) {
    self.init(
      weight: .normal(
        [vocabulary, width], standardDeviation: standardDeviation, dtype: dtype,
        generator: &generator))
  }

  override public var ownParameters: [(name: String, tensor: Tensor)] { [("weight", weight)] }

  /// The rows for `tokens`, shaped `shape + [width]`.
  public func callAsFunction(_ tokens: [Int], shape: [Int]) -> Tensor {
    weight.gatherRows(tokens, shape: shape)
  }
}
