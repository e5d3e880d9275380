import Kernels
import Random

/// A gradient check of one operation on fixed Float64 inputs: one row of
/// `tinymixer gradcheck`'s table and one `swift test` case.
public struct GradientCheckCase: Sendable, CustomStringConvertible {
  /// What is checked, for example `add (broadcast [2,3,4] with [3,1])`.
  public let name: String
  /// The shapes of the differentiated inputs or parameters.
  public let inputShapes: [[Int]]
  /// How the Jacobian is compared.
  public let method: GradientCheck.Method
  private let check: @Sendable () -> GradientCheck.Result

  /// A case that checks `function` at the inputs `makeInputs` builds.
  public init(
    _ name: String, inputShapes: [[Int]], method: GradientCheck.Method = .fullJacobian,
    inputs makeInputs: @escaping @Sendable () -> [Tensor],
    function: @escaping @Sendable ([Tensor]) -> Tensor
  ) {
    self.init(name, inputShapes: inputShapes, method: method) {
      GradientCheck.check(function, at: makeInputs(), method: method)
    }
  }

  /// A case that checks a function of parameters: `build` returns the parameters
  /// (Float64, requiring gradients) and the function of them, such as a model's loss.
  public init(
    _ name: String, parameterShapes: [[Int]], method: GradientCheck.Method,
    build: @escaping @Sendable () -> (parameters: [Tensor], output: () -> Tensor)
  ) {
    self.init(name, inputShapes: parameterShapes, method: method) {
      let (parameters, output) = build()
      return GradientCheck.check(parameters: parameters, of: output, method: method)
    }
  }

  private init(
    _ name: String, inputShapes: [[Int]], method: GradientCheck.Method,
    check: @escaping @Sendable () -> GradientCheck.Result
  ) {
    self.name = name
    self.inputShapes = inputShapes
    self.method = method
    self.check = check
  }

  /// Runs the check.
  public func run() -> GradientCheck.Result { check() }

  /// The input shapes, for example `[2,3] [3]`; a count when there are many.
  public var shapes: String {
    if inputShapes.count > 4 { return "\(inputShapes.count) tensors" }
    return inputShapes.map { "[" + $0.map(String.init).joined(separator: ",") + "]" }.joined(
      separator: " ")
  }

  /// The case's name.
  public var description: String { name }
}

/// What values a test input takes, so that checks stay away from kinks and ties.
public enum TestValues: Sendable {
  /// Uniform in [-2, 2).
  case signed
  /// Uniform in [0.5, 2): for log, square roots, fractional powers and divisors.
  case positive
  /// Magnitude in [0.2, 2) with a random sign: away from relu's kink at 0.
  case awayFromZero
  /// A shuffle of evenly spaced values 0.3 apart: no ties for max and top-k.
  case distinct

  /// A Float64 tensor of `shape` with these values, determined by `seed`.
  public func tensor(_ shape: [Int], seed: UInt64) -> Tensor {
    var generator = SeededGenerator(seed: seed)
    let count = Shape.count(shape)
    let values: [Double]
    switch self {
    case .signed:
      values = (0..<count).map { _ in 4 * generator.nextUniform() - 2 }
    case .positive:
      values = (0..<count).map { _ in 0.5 + 1.5 * generator.nextUniform() }
    case .awayFromZero:
      values = (0..<count).map { _ in
        (0.2 + 1.8 * generator.nextUniform()) * (generator.nextUniform() < 0.5 ? -1 : 1)
      }
    case .distinct:
      values = generator.shuffled((0..<count).map { 0.3 * Double($0) - 0.15 * Double(count) })
    }
    return Tensor(shape: shape, scalars: values)
  }
}

extension GradientCheckCase {
  /// A case whose inputs are described by (shape, values) pairs.
  public static func on(
    _ name: String, _ inputs: [([Int], TestValues)], method: GradientCheck.Method = .fullJacobian,
    _ function: @escaping @Sendable ([Tensor]) -> Tensor
  ) -> GradientCheckCase {
    GradientCheckCase(
      name, inputShapes: inputs.map(\.0), method: method,
      inputs: {
        inputs.enumerated().map { index, input in input.1.tensor(input.0, seed: UInt64(index + 1)) }
      },
      function: function)
  }

  /// Every differentiable operation of the Autodiff module, with broadcasting and
  /// keep-dimensions variants.
  public static var operations: [GradientCheckCase] {
    elementwise + arithmetic + reductions + products + shapes + indexing + probabilities + selection
  }

  static var elementwise: [GradientCheckCase] {
    let functions: [(UnaryFunction, TestValues)] = [
      (.negate, .signed), (.exp, .signed), (.log, .positive), (.squareRoot, .positive),
      (.reciprocalSquareRoot, .positive), (.tanh, .signed), (.sigmoid, .signed), (.silu, .signed),
      (.relu, .awayFromZero), (.gelu, .signed), (.softplus, .signed), (.power(3), .signed),
      (.power(0.5), .positive),
      (.power(-1.5), .positive),
    ]
    return functions.map { function, values in
      .on(function.description, [([2, 3], values)]) { $0[0].applying(function) }
    }
  }

  static var arithmetic: [GradientCheckCase] {
    let operations: [(String, @Sendable (Tensor, Tensor) -> Tensor)] = [
      ("add", { $0 + $1 }), ("subtract", { $0 - $1 }), ("multiply", { $0 * $1 }),
      ("divide", { $0 / $1 }),
    ]
    let layouts: [([Int], [Int])] = [
      ([2, 3], [2, 3]), ([2, 3, 4], [3, 1]), ([4], [2, 3, 4]), ([2, 1, 4], [3, 1]), ([2, 3], []),
    ]
    var cases: [GradientCheckCase] = []
    for (name, operation) in operations {
      for (a, b) in layouts {
        let label = a == b ? "\(name)" : "\(name) (broadcast \(a) with \(b))"
        cases.append(
          .on(label, [(a, .signed), (b, name == "divide" ? .positive : .signed)]) {
            operation($0[0], $0[1])
          })
      }
    }
    cases.append(
      .on("scalar arithmetic", [([2, 3], .positive)]) { 2 - (3 * $0[0] + 1) / 2 + 1 / $0[0] })
    return cases
  }

  static var reductions: [GradientCheckCase] {
    [
      .on("sum (all)", [([2, 3, 4], .signed)]) { $0[0].sum() },
      .on("sum (axis 1, keepdims)", [([2, 3, 4], .signed)]) {
        $0[0].sum(axes: [1], keepDimensions: true)
      },
      .on("sum (axes 0, 2)", [([2, 3, 4], .signed)]) { $0[0].sum(axes: [0, -1]) },
      .on("mean (all)", [([2, 3, 4], .signed)]) { $0[0].mean() },
      .on("mean (axis -1, keepdims)", [([2, 3, 4], .signed)]) {
        $0[0].mean(axes: [-1], keepDimensions: true)
      },
      .on("max (all)", [([2, 3, 4], .distinct)]) { $0[0].max() },
      .on("max (axis 1)", [([2, 3, 4], .distinct)]) { $0[0].max(axes: [1]) },
      .on("max (axes 0, 2, keepdims)", [([2, 3, 4], .distinct)]) {
        $0[0].max(axes: [0, 2], keepDimensions: true)
      },
      .on("broadcast to", [([3, 1], .signed)]) { $0[0].broadcast(to: [2, 3, 4]) },
      .on("sum to shape", [([2, 3, 4], .signed)]) { $0[0].sumToShape([3, 1]) },
    ]
  }

  static var products: [GradientCheckCase] {
    [
      .on("matmul", [([3, 4], .signed), ([4, 5], .signed)]) { matmul($0[0], $0[1]) },
      .on("matmul A·Bᵀ", [([3, 4], .signed), ([5, 4], .signed)]) {
        matmul($0[0], $0[1], transposeB: true)
      },
      .on("matmul Aᵀ·B", [([4, 3], .signed), ([4, 5], .signed)]) {
        matmul($0[0], $0[1], transposeA: true)
      },
      .on("matmul Aᵀ·Bᵀ", [([4, 3], .signed), ([5, 4], .signed)]) {
        matmul($0[0], $0[1], transposeA: true, transposeB: true)
      },
      .on("batched matmul", [([2, 3, 4], .signed), ([2, 4, 2], .signed)]) { matmul($0[0], $0[1]) },
      .on("batched matmul A·Bᵀ", [([2, 3, 4], .signed), ([2, 2, 4], .signed)]) {
        matmul($0[0], $0[1], transposeB: true)
      },
      .on("batched matmul Aᵀ·B", [([2, 4, 3], .signed), ([2, 4, 2], .signed)]) {
        matmul($0[0], $0[1], transposeA: true)
      },
      .on("matmul batch × matrix", [([2, 3, 4], .signed), ([4, 5], .signed)]) {
        matmul($0[0], $0[1])
      },
      .on("matmul batch × matrixᵀ", [([2, 3, 4], .signed), ([5, 4], .signed)]) {
        matmul($0[0], $0[1], transposeB: true)
      },
      .on("matmul broadcast batch", [([2, 1, 3, 4], .signed), ([3, 4, 2], .signed)]) {
        matmul($0[0], $0[1])
      },
      .on(
        "matmul (larger, projections)", [([17, 33], .signed), ([9, 33], .signed)],
        method: .randomProjections(count: 4)
      ) { matmul($0[0], $0[1], transposeB: true) },
    ]
  }

  static var shapes: [GradientCheckCase] {
    [
      .on("reshape", [([2, 3, 4], .signed)]) { $0[0].reshaped([4, -1]) * $0[0].reshaped([4, 6]) },
      .on("permute", [([2, 3, 4], .signed)]) { $0[0].permuted([2, 0, 1]) },
      .on("transpose", [([2, 3, 4], .signed)]) { $0[0].transposed(0, 2) },
      .on("slice", [([2, 5, 3], .signed)]) { $0[0].sliced(along: 1, 1..<4) },
      .on("concatenate (axis 0)", [([1, 3], .signed), ([2, 3], .signed)]) {
        concatenate([$0[0], $0[1]], along: 0)
      },
      .on(
        "concatenate (axis 1)",
        [([2, 1, 2], .signed), ([2, 3, 2], .signed), ([2, 2, 2], .signed)]
      ) {
        concatenate([$0[0], $0[1], $0[2]], along: 1)
      },
      .on("split", [([2, 6], .signed)]) { x in
        let parts = x[0].split(along: -1, sizes: [1, 3, 2])
        return parts[0] * parts[2].sum(axes: [1], keepDimensions: true)
          + parts[1].sum(axes: [1], keepDimensions: true)
      },
    ]
  }

  static var indexing: [GradientCheckCase] {
    [
      .on("gather rows (repeated index)", [([4, 3], .signed)]) {
        $0[0].gatherRows([2, 0, 2, 3, 2], shape: [5])
      },
      .on("gather rows (2-d indices)", [([5, 2], .signed)]) {
        $0[0].gatherRows([4, 1, 1, 0], shape: [2, 2])
      },
      .on("top-k values", [([3, 5], .distinct)]) { $0[0].topK(2).values },
      .on("renormalised top-2 (fused)", [([3, 5], .positive)]) {
        $0[0].renormalizedTopK(2).values
      },
      .on("renormalised top-2 (reference)", [([3, 5], .positive)]) {
        $0[0].renormalizedTopKReference(2).values
      },
      .on("scatter-add rows (repeated index)", [([4, 3], .signed)]) {
        $0[0].scatterAddRows([1, 3, 1, 0], rowCount: 5)
      },
    ]
  }

  static var probabilities: [GradientCheckCase] {
    [
      .on("softmax (last axis)", [([2, 4], .signed)]) { $0[0].softmax() },
      .on("softmax (axis 0)", [([3, 2, 2], .signed)]) { $0[0].softmax(axis: 0) },
      .on("log-softmax (last axis)", [([2, 4], .signed)]) { $0[0].logSoftmax() },
      .on("log-softmax (axis 1)", [([2, 3, 2], .signed)]) { $0[0].logSoftmax(axis: 1) },
      .on("cross-entropy", [([4, 5], .signed)]) {
        crossEntropy(logits: $0[0], targets: [1, 0, 4, 2])
      },
      .on("cross-entropy (masked)", [([2, 3, 5], .signed)]) {
        crossEntropy(
          logits: $0[0], targets: [1, 0, 4, 2, 3, 3], mask: [false, true, true, false, true, false])
      },
    ]
  }

  static var selection: [GradientCheckCase] {
    [
      .on("select (broadcast condition)", [([3, 4], .signed), ([4], .signed)]) {
        select(Tensor(shape: [3, 1], scalars: [1, 0, 1], dtype: .float64), $0[0], $0[1])
      },
      .on("masked fill", [([2, 3], .signed)]) {
        $0[0].maskedFill(
          Tensor(shape: [2, 3], scalars: [0, 1, 0, 1, 1, 0], dtype: .float64), with: -5)
      },
    ]
  }
}
