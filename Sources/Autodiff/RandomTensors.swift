import Random

extension Tensor {
  /// A tensor of independent uniform numbers in `[low, high)`.
  public static func uniform(
    _ shape: [Int], low: Double, high: Double, dtype: DType = .float32,
    generator: inout SeededGenerator
  ) -> Tensor {
    let values = (0..<Shape.count(shape)).map { _ in low + (high - low) * generator.nextUniform() }
    return Tensor(shape: shape, scalars: values, dtype: dtype)
  }

  /// A tensor of independent normal numbers with mean 0.
  public static func normal(
    _ shape: [Int], standardDeviation: Double = 1, dtype: DType = .float32,
    generator: inout SeededGenerator
  ) -> Tensor {
    let values = (0..<Shape.count(shape)).map { _ in standardDeviation * generator.nextNormal() }
    return Tensor(shape: shape, scalars: values, dtype: dtype)
  }
}
