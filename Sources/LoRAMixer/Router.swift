import Autodiff
import NN
import Random

/// How a router's probabilities become the weights that mix the experts
/// (Tutorials/the-paper.md §3).
public enum RoutingMode: String, CaseIterable, Sendable {
  /// w = p: every expert, weighted by the softmax; gradients reach every logit.
  case soft
  /// w = h, the top-k renormalised: only the selected experts are computed, and only
  /// their logits learn.
  case topk
  /// Weights like `topk`, gradient like `soft` (straight-through): the experts are mixed by
  /// the hard top-k weights, and every logit learns. Training still computes every
  /// expert's output: dL/dw_e = ⟨g, s_e B_e A_e x⟩ needs it, and through the softmax every
  /// logit's gradient needs every w_e's. Only inference computes the selected experts alone.
  case hardsoft
}

/// What a token's routing is computed from. Every choice is causal: a token's routing
/// depends only on positions at or before its own, in training and at inference alike.
public enum RouterInput: String, CaseIterable, Sendable {
  /// The token's own input vector, `z_t = R x_t`: the paper's router. Every token at every
  /// site decides alone, so a word shared by several tasks is routed the same in all.
  case token
  /// The mean of the site's router logits over the positions up to and including the
  /// token's, `z'_t = (1/(t+1)) Σ_{s≤t} R x_s`; for a linear router that is routing the
  /// prefix mean of the site's inputs. The routing of a sequence settles as it is read.
  /// No new parameters; our departure from the paper (Tutorials/the-paper.md §3).
  case prefixMean = "prefix-mean"
  /// The same mean over the positions 1...t only, leaving out position 0 (`<bos>`, the same
  /// in every sequence), which is routed by its own logits.
  case contentMean = "content-mean"
}

/// The routers' settings, shared by every site of a mixture.
public struct RoutingSettings: Equatable, Hashable, Sendable {
  /// How probabilities become weights while training.
  public var mode: RoutingMode = .hardsoft
  /// What each token's routing is computed from.
  public var input: RouterInput = .token
  /// Experts selected per token while training.
  public var k = 2
  /// Experts selected per token at inference (which always routes top-k).
  public var inferenceK = 2
  /// The softmax temperature τ: p = softmax(z / τ).
  public var temperature = 1.0

  /// The default: hard-soft top-2 at temperature 1, each token routed by its own input.
  public init(
    mode: RoutingMode = .hardsoft, input: RouterInput = .token, k: Int = 2, inferenceK: Int? = nil,
    temperature: Double = 1
  ) {
    self.mode = mode
    self.input = input
    self.k = k
    self.inferenceK = inferenceK ?? k
    self.temperature = temperature
  }
}

/// One site's routing of one batch: what the experts were weighted by, and what the
/// routing losses need.
public struct SiteRouting {
  /// The logits divided by the temperature, `z / τ`, `[tokens, experts]`; absent experts
  /// hold -1e9, so they get no probability.
  public let scaledLogits: Tensor
  /// The dense probabilities p, `[tokens, experts]` (on the tape while training).
  public let probabilities: Tensor
  /// The weights that mix the experts, `[tokens, experts]`.
  public let weights: Tensor
  /// For each token, the `k` experts of its top-k set (row-major, `k` per token).
  public let selected: [Int]
  /// Experts per token in the top-k set.
  public let k: Int
  /// Whether only the selected experts are computed.
  public let sparse: Bool
}

extension SiteRouting {
  /// One routing of the given rows of several routings of the same site, part after part:
  /// a batch run as groups of similar length, kept to its real tokens. The tensors are
  /// gathered on the tape, so a loss of the joined routing trains the router as a loss of
  /// the parts would.
  public static func joined(_ parts: [(routing: SiteRouting, rows: [Int])]) -> SiteRouting {
    precondition(!parts.isEmpty, "nothing to join")
    let k = parts[0].routing.k
    precondition(parts.allSatisfy { $0.routing.k == k }, "the parts route different k")
    func join(_ tensor: (SiteRouting) -> Tensor) -> Tensor {
      let gathered = parts.map { tensor($0.routing).gatherRows($0.rows, shape: [$0.rows.count]) }
      return gathered.count == 1 ? gathered[0] : concatenate(gathered, along: 0)
    }
    return SiteRouting(
      scaledLogits: join(\.scaledLogits), probabilities: join(\.probabilities),
      weights: join(\.weights),
      selected: parts.flatMap { part in
        part.rows.flatMap { part.routing.selected[($0 * k)..<($0 * k + k)] }
      },
      k: k, sparse: parts[0].routing.sparse)
  }
}

/// A linear router, `z = R x` with `R: [experts, inputs]` and no bias.
public final class Router: Module {
  /// `R`, `[experts, inputs]`.
  public let weight: Tensor
  /// Which experts have weights at the router's site (all when nil was given): an absent
  /// one is left out of the softmax. Fixed when the site is built.
  public let present: [Bool]

  /// A router with given weights over the experts marked `present` (default: all).
  public init(weight: Tensor, present: [Bool]? = nil) {
    self.weight = weight
    self.present = present ?? [Bool](repeating: true, count: weight.shape[0])
    precondition(
      self.present.count == weight.shape[0] && self.present.contains(true),
      "a router needs a present-or-absent mark per expert, and one present expert")
    weight.requiresGradient = true
  }

  /// A router for `experts` from `inputs`, with small random weights (standard deviation
  /// 0.02), so that every expert starts with about the same probability.
  public convenience init(
    experts: Int, inputs: Int, present: [Bool]? = nil, dtype: DType = .float32,
    generator: inout SeededGenerator
  ) {
    self.init(
      weight: .normal(
        [experts, inputs], standardDeviation: 0.02, dtype: dtype, generator: &generator),
      present: present)
  }

  override public var ownParameters: [(name: String, tensor: Tensor)] { [("weight", weight)] }

  /// Routes the rows of `x` (`[..., inputs]`, sequences of `length` tokens one after
  /// another; nil: one sequence) over the `present` experts (Tutorials/the-paper.md §3):
  /// logits from `settings.input`, `p = softmax(z / τ)` with absent experts left out of the
  /// softmax, `h` the top-k of p renormalised (ties to the lower index), and the weights by
  /// `mode`. When `training` is false the routing is top-k with the inference k.
  public func route(
    _ x: Tensor, length: Int? = nil, settings: RoutingSettings, training: Bool
  ) -> SiteRouting {
    let experts = weight.shape[0]
    // x as it is (`RoutedSite.route`); the narrow logits as rows.
    var logits = matmul(x, weight, transposeB: true).reshaped([-1, experts])
    if settings.input != .token {
      logits = prefixMean(
        logits, length: length ?? logits.shape[0], skippingFirst: settings.input == .contentMean)
    }
    if present.contains(false) {
      let absent = Tensor(
        shape: [1, experts], scalars: present.map { $0 ? 0 : 1 }, dtype: x.dtype)
      logits = logits.maskedFill(absent, with: -1e9)
    }
    // Divided by τ = 1, every number is itself, and so is its gradient: no operation then.
    let scaledLogits = settings.temperature == 1 ? logits : logits / settings.temperature
    let probabilities = scaledLogits.softmax()
    let k = min(training ? settings.k : settings.inferenceK, present.count { $0 })
    // h = (M ⊙ p) / Σ (M ⊙ p), with M the 0/1 mask of the selected experts: the gradient
    // of h reaches the selected probabilities only.
    let (topK, selected) = probabilities.renormalizedTopK(k)
    let weights: Tensor
    switch (training, settings.mode) {
    case (true, .soft): weights = probabilities
    case (true, .hardsoft): weights = straightThrough(value: topK, gradientTo: probabilities)
    default: weights = topK
    }
    return SiteRouting(
      scaledLogits: scaledLogits, probabilities: probabilities, weights: weights,
      selected: selected, k: k,
      sparse: !training || settings.mode == .topk)
  }
}

/// The causal running mean of `rows` (`[tokens, columns]`, sequences of `length` rows one
/// after another): row t of each sequence becomes the mean of its rows 0...t. Computed as
/// one product per sequence with the averaging matrix `M[t, s] = 1/(t+1)` for `s ≤ t` (else
/// 0); the gradient, `Mᵀ · g`, is the product's own. `skippingFirst` leaves row 0 out of
/// every later row's mean (row 0 stays itself).
public func prefixMean(_ rows: Tensor, length: Int, skippingFirst: Bool = false) -> Tensor {
  let (tokens, columns) = (rows.shape[0], rows.shape[1])
  precondition(length > 0 && tokens % length == 0, "\(tokens) rows are not sequences of \(length)")
  var averaging = [Double](repeating: 0, count: length * length)  // M, [t, s]
  for t in 0..<length {
    let first = skippingFirst && t > 0 ? 1 : 0
    for s in first...t { averaging[t * length + s] = 1 / Double(t + 1 - first) }
  }
  let sequences = rows.reshaped([tokens / length, length, columns])
  let mean = matmul(
    Tensor(shape: [length, length], scalars: averaging, dtype: rows.dtype), sequences)
  return mean.reshaped([tokens, columns])
}

/// Whether routing follows the training rule (the settings' mode and k) or inference's
/// (top-k with the inference k, only the selected experts computed).
public enum RoutingPhase: Sendable {
  /// `RoutingSettings.mode` with `k` (hard-soft computes every expert).
  case training
  /// Top-k with `inferenceK`, only the selected experts computed.
  case inference
}

/// One site's routing in a forward pass.
public typealias SiteRecord = (site: RoutedSite, routing: SiteRouting)

/// What the sites of one mixture share: the routing settings, and, while one of the
/// mixture's forward passes runs (`run`), that pass's phase and the routings its sites have
/// made so far. Outside a pass the sites route as at inference and keep nothing, so greedy
/// decoding runs the plain model.
public final class RoutingState {
  /// The routers' settings.
  public var settings: RoutingSettings
  /// The running pass: its phase and each site's routing so far, in the order they ran.
  private var pass: (phase: RoutingPhase, records: [SiteRecord])? = nil

  /// A state with `settings` and no pass running.
  public init(settings: RoutingSettings) { self.settings = settings }

  /// `body`'s result with every site routing by `phase`, and each site's routing in the
  /// order the sites ran (a site run twice is recorded twice). Passes do not nest.
  public func run<Result>(_ phase: RoutingPhase, _ body: () throws -> Result) rethrows -> (
    result: Result, routings: [SiteRecord]
  ) {
    precondition(pass == nil, "a mixture's forward passes do not nest")
    pass = (phase, [])
    defer { pass = nil }
    let result = try body()
    return (result, pass!.records)
  }

  /// The phase sites route by now: the running pass's, else inference.
  var phase: RoutingPhase { pass?.phase ?? .inference }

  /// Keeps `site`'s routing, if a pass is running.
  func record(_ site: RoutedSite, _ routing: SiteRouting) {
    pass?.records.append((site, routing))
  }
}
