import Dispatch

/// A flat record of the differentiable operations run while it was active.
///
/// Each record is an operation's output and, for each input that requires a gradient, an
/// *edge*: the input and its vector-Jacobian product, a closure that turns the gradient of
/// the output into the gradient of that input. Backward walks the records from last to
/// first. There is no graph of nodes holding their parents: a chain of 100,000 operations
/// is 100,000 array entries, walked by a loop and released by one array deallocation.
///
///     let tape = Tape()
///     let loss = tape.record { ((x * w).sum() - 1).pow(2) }
///     let gradients = tape.gradients(of: loss)
///     gradients[w]   // d loss / d w
///
/// A tape belongs to the thread that records on it.
public final class Tape: @unchecked Sendable {
  /// The tape operations record on, if any (bound by `record`).
  @TaskLocal public static var active: Tape?

  /// One input of a recorded operation and how the output's gradient reaches it.
  struct Edge {
    let input: Tensor
    let vectorJacobianProduct: (Tensor) -> Tensor
    /// Given the output's gradient and the input's gradient so far, their sum
    /// `sofar + vectorJacobianProduct(gradient)`, with its bits, formed in one pass (a
    /// product added into the sum's numbers in place, `runKernel(_:shape:addingInto:…)`;
    /// the tape hands over a sum nothing else holds). Nil: the contribution is formed, then
    /// added.
    var adding: ((_ gradient: Tensor, _ sofar: Tensor) -> Tensor)? = nil
  }

  /// One recorded operation.
  struct Record {
    let operation: String
    let output: Tensor
    let edges: [Edge]
  }

  private(set) var records: [Record] = []
  /// How many contributions the last backward walk added into a gradient as it formed them
  /// (`Edge.adding`): what tells a test that the shortcut ran.
  private(set) var contributionsAddedAsFormed = 0

  /// Time spent per operation, when the tape was created with `profiling`.
  public private(set) var profile: OperationProfile?
  /// When the previous operation was recorded (for the forward times of the profile).
  private var lastRecorded: UInt64 = 0

  /// Whether new tapes profile their operations when not told (`init(profiling:)`): set
  /// around a whole run (`tinymixer train --profile`) to profile every step's tape.
  @TaskLocal public static var profilesOperations = false

  /// An empty tape. With `profiling`, it measures each operation's forward time (from the
  /// previous record to this one) and backward time, by name.
  public init(profiling: Bool = Tape.profilesOperations) {
    if profiling {
      profile = OperationProfile()
      lastRecorded = DispatchTime.now().uptimeNanoseconds
    }
  }

  /// The number of recorded operations.
  public var count: Int { records.count }

  /// The recorded operations' names, in the order they ran (`matmul`, `add`, `tanh`, …).
  public var operations: [String] { records.map { String($0.operation.prefix { $0 != "(" }) } }

  /// Each record's operation name, its output and the inputs it has edges to, in the
  /// order they ran: the tape as a picture or a debugger shows it.
  public var entries: [(operation: String, output: Tensor, inputs: [Tensor])] {
    zip(operations, records).map { ($0, $1.output, $1.edges.map(\.input)) }
  }

  /// Runs `body` with this tape active, so the operations it runs are recorded here.
  public func record<Result>(_ body: () throws -> Result) rethrows -> Result {
    try Tape.$active.withValue(self) { try body() }
  }

  func append(_ record: Record) {
    if profile != nil {
      let now = DispatchTime.now().uptimeNanoseconds
      profile!.add(record.operation, forward: now - lastRecorded)
      lastRecorded = now
    }
    records.append(record)
  }

  /// The gradient of `output` with respect to every tensor it depends on that requires a
  /// gradient and was not itself computed on this tape (parameters, watched inputs).
  ///
  /// `output` must be a scalar, unless `seed` gives the gradient to start from (same shape
  /// as `output`): then this is the vector-Jacobian product `seedᵀ · J`. A tensor used
  /// several times receives the sum of its contributions. The tape is only read, so
  /// calling this twice gives the same gradients.
  public func gradients(of output: Tensor, seed: Tensor? = nil) -> Gradients {
    gradients(of: output, seed: seed, fusing: true)
  }

  /// `gradients(of:seed:)`, where `fusing` says whether edges that can add their
  /// contribution into the gradient so far do (`Edge.adding`): the same bits either way.
  func gradients(of output: Tensor, seed: Tensor?, fusing: Bool) -> Gradients {
    if let seed {
      precondition(seed.shape == output.shape, "seed \(seed.shape) for output \(output.shape)")
    } else {
      precondition(output.count == 1, "gradients of a non-scalar \(output.shape) need a seed")
    }
    return Tape.$active.withValue(nil) {
      var pending = walkBackward(from: output, seed: seed, fusing: fusing) { _, _ in true }
      var gradients = Gradients()
      for record in records {
        for edge in record.edges {
          let key = ObjectIdentifier(edge.input)
          if let gradient = pending.removeValue(forKey: key) {
            gradients.values[key] = (edge.input, gradient)
          }
        }
      }
      if let gradient = pending.removeValue(forKey: ObjectIdentifier(output)),
        output.requiresGradient
      {
        gradients.values[ObjectIdentifier(output)] = (output, gradient)
      }
      return gradients
    }
  }
}

extension Tape {
  /// The backward pass: walks the records from last to first, handing each output's
  /// gradient to its inputs, and returns the gradients not yet consumed (those of the
  /// tensors not computed on this tape, and of `output` itself). `visit` sees each record
  /// with its inputs' contributions and may stop the walk by returning false; with `fusing`,
  /// edges that can add their contribution into the sum so far do (`Edge.adding`), and
  /// `visit` sees that sum instead.
  func walkBackward(
    from output: Tensor, seed: Tensor?, fusing: Bool, visit: (Record, [Tensor]) -> Bool
  ) -> [ObjectIdentifier: Tensor] {
    contributionsAddedAsFormed = 0
    let start = seed ?? Tensor.ones(output.shape, dtype: output.dtype)
    var pending: [ObjectIdentifier: Tensor] = [ObjectIdentifier(output): start]
    for record in records.reversed() {
      // A record's output is used only by later records, all processed by now: its
      // gradient is complete, and no longer needed once passed on.
      guard let gradient = pending.removeValue(forKey: ObjectIdentifier(record.output)) else {
        continue
      }
      let started = profile == nil ? 0 : DispatchTime.now().uptimeNanoseconds
      let contributions = passBack(gradient, through: record, into: &pending, fusing: fusing)
      if profile != nil {
        profile!.add(record.operation, backward: DispatchTime.now().uptimeNanoseconds - started)
      }
      if !visit(record, contributions) { break }
    }
    return pending
  }

  /// Hands `gradient`, the gradient of `record`'s output, to each of its inputs through
  /// the input's vector-Jacobian product, adding it to what that input already received.
  /// Returns each input's contribution, or, where an edge added its contribution as it
  /// formed it (`Edge.adding`, when `fusing`), the input's new sum.
  fileprivate func passBack(
    _ gradient: Tensor, through record: Record, into pending: inout [ObjectIdentifier: Tensor],
    fusing: Bool
  ) -> [Tensor] {
    record.edges.map { edge in
      let key = ObjectIdentifier(edge.input)
      // A product can add itself into the gradient so far as it forms it: the same sum.
      if fusing, let adding = edge.adding, var sofar = pending.removeValue(forKey: key) {
        // The sum so far is the edge's to add into, in place; unless something else holds
        // it (a caller's seed), then a tensor of its own, whose numbers copy on writing.
        if !isKnownUniquelyReferenced(&sofar) {
          sofar = Tensor(shape: sofar.shape, storage: sofar.storage)
        }
        let sum = checked(adding(gradient, sofar), for: edge)
        contributionsAddedAsFormed += 1
        pending[key] = sum
        return sum
      }
      let contribution = checked(edge.vectorJacobianProduct(gradient), for: edge)
      pending[key] = pending[key].map { $0 + contribution } ?? contribution
      return contribution
    }
  }

  /// `gradient`, for `edge`'s input, if it has the input's shape.
  private func checked(_ gradient: Tensor, for edge: Edge) -> Tensor {
    precondition(
      gradient.shape == edge.input.shape,
      "gradient of shape \(gradient.shape) for an input of shape \(edge.input.shape)")
    return gradient
  }

  /// Where a NaN or an infinity first appears in the computation of `output`: the first
  /// recorded operation whose output is not finite, or, when every value is, the first
  /// operation whose backward pass gives a non-finite gradient. For example
  /// `forward pass: operation 57 of 210 (log)`. Nil when all is
  /// finite. It reads every value, so it is for locating a fault, not for every step.
  public func locateNonFinite(from output: Tensor) -> String? {
    for (index, record) in records.enumerated() where !record.output.isFinite {
      return
        "forward pass: operation \(index + 1) of \(records.count) (\(record.operation))"
    }
    var found: String? = nil
    let positions = Dictionary(
      records.enumerated().map { (ObjectIdentifier($1.output), $0) },
      uniquingKeysWith: { a, _ in a })
    Tape.$active.withValue(nil) {
      _ = walkBackward(from: output, seed: nil, fusing: false) { record, contributions in
        guard contributions.allSatisfy(\.isFinite) else {
          let index = positions[ObjectIdentifier(record.output)]!
          found =
            "backward pass: the gradient through operation \(index + 1) of \(records.count) (\(record.operation))"
          return false
        }
        return true
      }
    }
    return found
  }
}

extension Tensor {
  /// Whether every element is finite (no NaN, no infinity).
  public var isFinite: Bool {
    switch storage {
    case .float32(let values): values.allSatisfy(\.isFinite)
    case .float64(let values): values.allSatisfy(\.isFinite)
    }
  }
}

/// Forward and backward time per operation name, in nanoseconds.
public struct OperationProfile: Sendable {
  /// Per operation name: how many records, forward time, backward time.
  public private(set) var entries: [String: (count: Int, forward: UInt64, backward: UInt64)] = [:]

  /// An empty profile.
  public init() {}

  /// Adds another profile's counts and times (the steps of a run, summed).
  public mutating func add(_ other: OperationProfile) {
    for (name, entry) in other.entries {
      let mine = entries[name] ?? (0, 0, 0)
      entries[name] = (
        mine.count + entry.count, mine.forward + entry.forward, mine.backward + entry.backward
      )
    }
  }

  mutating func add(_ operation: String, forward: UInt64 = 0, backward: UInt64 = 0) {
    let name = String(operation.prefix { $0 != "(" })
    var entry = entries[name] ?? (0, 0, 0)
    if forward > 0 || backward == 0 { entry.count += 1 }
    entry.forward += forward
    entry.backward += backward
    entries[name] = entry
  }
}

/// Gradients found by `Tape.gradients(of:)`, looked up by tensor.
public struct Gradients {
  /// Keyed by identity; each entry keeps its tensor alive so the key stays unique.
  var values: [ObjectIdentifier: (tensor: Tensor, gradient: Tensor)] = [:]

  /// The gradient with respect to `tensor`, or nil if the output does not depend on it
  /// (or it does not require a gradient).
  public subscript(_ tensor: Tensor) -> Tensor? {
    values[ObjectIdentifier(tensor)]?.gradient
  }

  /// How many tensors received a gradient.
  public var count: Int { values.count }
}

extension Tensor {
  /// Records this tensor, the output of an operation, on the active tape.
  ///
  /// Each edge pairs an input with its vector-Jacobian product: given the gradient of this
  /// output, it returns the gradient of that input (same shape as the input). Edges whose
  /// input does not require a gradient are dropped, so frozen tensors cost no backward
  /// work. Without an active tape, or without any input requiring a gradient, nothing is
  /// recorded (that is inference). Returns `self`, so an operation ends with
  /// `return output.recorded(...)`. This is how every operation in this module is
  /// written, and how new ones are added.
  /// `operation` names the record in `Tape.operations`; it defaults to the calling
  /// function's name.
  public func recorded(
    _ edges: (input: Tensor, vectorJacobianProduct: (Tensor) -> Tensor)...,
    operation: String = #function
  ) -> Tensor {
    recorded(edges: edges, operation: operation)
  }

  /// `recorded` for a list of edges built at run time (one per input of `concatenate`).
  public func recorded(
    edges: [(input: Tensor, vectorJacobianProduct: (Tensor) -> Tensor)],
    operation: String = #function
  ) -> Tensor {
    recorded(
      edges.map { Tape.Edge(input: $0.input, vectorJacobianProduct: $0.vectorJacobianProduct) },
      operation: operation)
  }

  /// `recorded` where an edge may also add its contribution into the gradient its input
  /// has so far as it forms it (`adding(gradient, sofar)`, returning `sofar + contribution`
  /// with the bits of that sum; nil where it cannot). `sofar` is the edge's own: a product
  /// added into its numbers in place (`runKernel(_:shape:addingInto:…)`) passes over the
  /// sum once, where forming the product and then adding passes three arrays.
  public func recorded(
    edges: [(
      input: Tensor, vectorJacobianProduct: (Tensor) -> Tensor,
      adding: ((_ gradient: Tensor, _ sofar: Tensor) -> Tensor)?
    )],
    operation: String = #function
  ) -> Tensor {
    recorded(
      edges.map {
        Tape.Edge(
          input: $0.input, vectorJacobianProduct: $0.vectorJacobianProduct, adding: $0.adding)
      }, operation: operation)
  }

  /// `recorded` with the tape's own edges, which may add their contribution into the
  /// gradient so far (`Tape.Edge.adding`).
  func recorded(_ edges: [Tape.Edge], operation: String) -> Tensor {
    guard let tape = Tape.active else { return self }
    let kept = edges.filter { $0.input.requiresGradient }
    guard !kept.isEmpty else { return self }
    requiresGradient = true
    tape.append(Tape.Record(operation: operation, output: self, edges: kept))
    return self
  }
}

/// Runs `body` on a fresh tape and returns its scalar result and its gradients with
/// respect to `parameters`, in order. A parameter the result does not depend on gets a
/// gradient of zeros.
public func valueAndGradients(
  of parameters: [Tensor], _ body: () throws -> Tensor
) rethrows -> (value: Tensor, gradients: [Tensor]) {
  let tape = Tape()
  let value = try tape.record(body)
  let gradients = tape.gradients(of: value)
  return (value, parameters.map { gradients[$0] ?? Tensor.zeros($0.shape, dtype: $0.dtype) })
}

extension Tensor {
  /// Records an operation whose backward pass computes the gradients of all its inputs in
  /// one go (a fused kernel that yields dx and dw together).
  ///
  /// `backward(g, needed)` receives the output's gradient and, per input, whether its
  /// gradient is needed; it returns one gradient per input, nil where not needed. It runs
  /// once per backward walk; each input's edge takes its own result.
  public func recorded(
    inputs: [Tensor], operation: String = #function,
    backward: @escaping (Tensor, [Bool]) -> [Tensor?]
  ) -> Tensor {
    let shared = SharedGradients(inputs: inputs, backward: backward)
    return recorded(
      edges: inputs.indices.map { index in
        (inputs[index], { g in shared.take(index, for: g) })
      }, operation: operation)
  }
}

/// The results of one multi-input backward pass, handed out edge by edge.
private final class SharedGradients {
  let needed: [Bool]
  let backward: (Tensor, [Bool]) -> [Tensor?]
  var results: [Tensor?] = []
  var remaining = 0

  init(inputs: [Tensor], backward: @escaping (Tensor, [Bool]) -> [Tensor?]) {
    self.needed = inputs.map(\.requiresGradient)
    self.backward = backward
  }

  func take(_ index: Int, for gradient: Tensor) -> Tensor {
    if remaining == 0 {
      results = backward(gradient, needed)
      remaining = needed.filter { $0 }.count
    }
    remaining -= 1
    defer { results[index] = nil }
    guard let result = results[index] else {
      preconditionFailure("no gradient computed for input \(index)")
    }
    return result
  }
}
