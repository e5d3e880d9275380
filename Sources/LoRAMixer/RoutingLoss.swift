import Autodiff

/// Which routing loss is added to the task loss.
public enum RoutingLossKind: String, CaseIterable, Sendable {
  /// The Routing Specialization Loss: balance and per-token entropy (Tutorials/the-paper.md §4).
  case rsl
  /// The plain load-balancing loss alone, the baseline.
  case aux
  /// RSL's entropy term alone, with its sign and λ: what the balance term adds to it shows
  /// against this (the paper's Table 8).
  case entropy
  /// No routing loss.
  case none

  /// Whether the loss has the balance term (weighted by α, counted by `counting`).
  public var hasBalanceTerm: Bool { self == .rsl || self == .aux }
  /// Whether the loss has the entropy term (weighted by λ, with its sign).
  public var hasEntropyTerm: Bool { self == .rsl || self == .entropy }
}

/// The sign of RSL's entropy term, on which the paper contradicts itself
/// (Tutorials/the-paper.md §4).
public enum EntropySign: String, CaseIterable, Sendable {
  /// The equation as printed: `- λ · H`, a bonus that spreads each token's routing.
  case spread
  /// The prose: `+ λ · H`, a penalty that sharpens each token's routing.
  case sharpen

  /// The sign in `RSL = α · balance - sign · λ · H`.
  public var sign: Double { self == .spread ? 1 : -1 }
}

/// What the balance term counts as one unit of load.
public enum BalanceCounting: String, CaseIterable, Sendable {
  /// Every routed token alike (the paper): a task with longer sequences is a larger load,
  /// so even a perfectly specialised router looks unbalanced when tasks differ in length.
  case token
  /// Every sequence alike: each token weighs 1 / (its sequence's routed tokens), so a
  /// router that sends each task to its own expert is balanced on an even mix of tasks.
  case sequence
}

/// The routing loss and its coefficients.
public struct RoutingLossSettings: Equatable, Hashable, Sendable {
  /// Which loss.
  public var kind: RoutingLossKind
  /// The sign of the entropy term (RSL only).
  public var entropy: EntropySign
  /// α, the weight of the balance term.
  public var alpha: Double
  /// λ, the weight of the entropy term (RSL only).
  public var lambda: Double
  /// What the balance term counts.
  public var counting: BalanceCounting
  /// The weight of ST-MoE's router z-loss, the mean over tokens of (log Σ_e exp z_e)², added
  /// to any kind (0: none). It keeps the router's logits small (ST-MoE uses 0.001).
  public var zLoss: Double

  /// RSL with α = λ = 0.01, the printed sign and token counting, unless told otherwise.
  public init(
    kind: RoutingLossKind = .rsl, entropy: EntropySign = .spread, alpha: Double = 0.01,
    lambda: Double = 0.01, counting: BalanceCounting = .token, zLoss: Double = 0
  ) {
    self.kind = kind
    self.entropy = entropy
    self.alpha = alpha
    self.lambda = lambda
    self.counting = counting
    self.zLoss = zLoss
  }
}

/// A batch's routing loss, averaged over sites, with its two terms (also averaged) for the log.
public struct RoutingLossValue {
  /// `α · balance - sign · λ · H` (or `α · balance`, or zero), on the tape.
  public var loss: Tensor
  /// The mean over sites of `E · Σ p̄_i f_i`; 1 when perfectly balanced.
  public var balance: Double
  /// The mean over sites of the mean per-token entropy of p.
  public var meanEntropy: Double
}

/// The balance term of one site: `E · Σ_i p̄_i f_i`, over the rows `tokens` of the routing
/// (nil: every row). p̄ is the mean dense probability (differentiable); f_i, the share of
/// top-k slots expert i took, is a constant. E counts the experts present at the site.
/// `weights` (from `balanceWeights`, one per counted row, summing to 1) make both means
/// weighted ones; nil counts every row alike, in one operation each way (`tokenBalance`)
/// with the bits of `balanceTermReference`'s primitive operations.
public func balanceTerm(
  _ routing: SiteRouting, tokens: [Int]?, experts: Int, weights: [Double]? = nil
) -> Tensor {
  guard weights == nil else {
    return balanceTermReference(routing, tokens: tokens, experts: experts, weights: weights)
  }
  return tokenBalance(
    probabilities: rows(routing.probabilities, tokens),
    shares: selectionShares(routing, tokens: tokens, weights: nil), experts: experts)
}

/// `balanceTerm` written with primitive operations: the means as a product with the weights
/// or a mean over the rows, times f, summed, times E.
public func balanceTermReference(
  _ routing: SiteRouting, tokens: [Int]?, experts: Int, weights: [Double]? = nil
) -> Tensor {
  let probabilities = rows(routing.probabilities, tokens)
  let share = selectionShares(routing, tokens: tokens, weights: weights)
  let f = Tensor(shape: [share.count], scalars: share, dtype: probabilities.dtype)
  let meanProbability =
    if let weights {
      matmul(
        Tensor(shape: [1, weights.count], scalars: weights, dtype: probabilities.dtype),
        probabilities
      ).reshaped([share.count])
    } else {
      probabilities.mean(axes: [0])
    }
  return (meanProbability * f).sum() * Double(experts)
}

/// f, each expert's share of the top-k slots of the rows `tokens` (nil: every row), each
/// row counted with its weight (nil: all alike).
func selectionShares(_ routing: SiteRouting, tokens: [Int]?, weights: [Double]?) -> [Double] {
  let (counted, k) = (tokens?.count ?? routing.probabilities.shape[0], routing.k)
  var share = [Double](repeating: 0, count: routing.probabilities.shape[1])
  routing.selected.withUnsafeBufferPointer { selected in
    for index in 0..<counted {
      let token = tokens?[index] ?? index
      let slotWeight = (weights?[index] ?? 1 / Double(counted)) / Double(k)
      for slot in 0..<k { share[selected[token * k + slot]] += slotWeight }
    }
  }
  return share
}

/// The balance term's weight for each of the rows `tokens` (nil: every row of `rowCount`)
/// when it counts by `counting`: nil for `.token` (every row alike), else 1 / (the counted
/// rows of its sequence) / (the sequences), `sequences[row]` naming each row's sequence
/// (nil: one sequence). The same for every site of a batch, so computed once per batch.
public func balanceWeights(
  tokens: [Int]?, rowCount: Int, counting: BalanceCounting, sequences: [Int]?
) -> [Double]? {
  guard counting == .sequence else { return nil }
  let counted = tokens ?? Array(0..<rowCount)
  let sequenceOf = { (row: Int) in sequences?[row] ?? 0 }
  var perSequence: [Int: Int] = [:]
  for row in counted { perSequence[sequenceOf(row), default: 0] += 1 }
  let count = Double(perSequence.count)
  return counted.map { 1 / (Double(perSequence[sequenceOf($0)]!) * count) }
}

/// The mean over the rows `tokens` (nil: every row) of each token's routing entropy,
/// `H(x) = -Σ_i p_i log p_i`, with log p from the log-softmax of the logits, so absent
/// experts (p = 0, log p = -1e9) contribute exactly 0, not 0 · log 0 = NaN. One operation
/// each way (`meanRowEntropy`), with the bits of `meanEntropyReference`.
public func meanEntropy(_ routing: SiteRouting, tokens: [Int]?) -> Tensor {
  meanRowEntropy(
    probabilities: rows(routing.probabilities, tokens),
    logits: rows(routing.scaledLogits, tokens))
}

/// `meanEntropy` written with primitive operations.
public func meanEntropyReference(_ routing: SiteRouting, tokens: [Int]?) -> Tensor {
  let logProbabilities = rows(routing.scaledLogits, tokens).logSoftmax()
  return -(rows(routing.probabilities, tokens) * logProbabilities).sum(axes: [-1]).mean()
}

/// ST-MoE's router z-loss of one site: the mean over the rows `tokens` (nil: every row) of
/// the squared log-sum-exp of the router's logits (absent experts, at -1e9, add nothing).
public func routerZLoss(_ routing: SiteRouting, tokens: [Int]?) -> Tensor {
  let logits = rows(routing.scaledLogits, tokens)
  let largest = logits.detached().max(axes: [-1], keepDimensions: true)
  let logSumExp = largest + log(exp(logits - largest).sum(axes: [-1], keepDimensions: true))
  return (logSumExp * logSumExp).mean()
}

/// The routing loss of one batch (Tutorials/the-paper.md §4): each site's
/// `α · balance - sign · λ · mean H` (`aux`: `α · balance`; `entropy`: `- sign · λ · mean H`),
/// plus the z-loss times its weight, averaged over the sites.
/// `tokens` are the rows that count (the non-pad tokens), nil for all; `sequences[row]`
/// names each row's sequence (nil: one sequence), for a balance counted per sequence.
public func routingLoss(
  _ routings: [(routing: SiteRouting, experts: Int)], tokens: [Int]?, sequences: [Int]? = nil,
  settings: RoutingLossSettings
) -> RoutingLossValue {
  guard let dtype = routings.first?.routing.probabilities.dtype else {
    return RoutingLossValue(loss: Tensor(0), balance: 0, meanEntropy: 0)
  }
  var total = Tensor(0, dtype: dtype)
  var balance = 0.0
  var entropy = 0.0
  let weights = balanceWeights(
    tokens: tokens, rowCount: routings[0].routing.probabilities.shape[0],
    counting: settings.counting, sequences: sequences)
  for (routing, experts) in routings {
    let siteBalance = balanceTerm(routing, tokens: tokens, experts: experts, weights: weights)
    let siteEntropy = meanEntropy(routing, tokens: tokens)
    balance += siteBalance.item
    entropy += siteEntropy.item
    if settings.kind.hasBalanceTerm { total = total + siteBalance * settings.alpha }
    if settings.kind.hasEntropyTerm {
      total = total - siteEntropy * (settings.entropy.sign * settings.lambda)
    }
    if settings.zLoss > 0 {
      total = total + routerZLoss(routing, tokens: tokens) * settings.zLoss
    }
  }
  let sites = Double(routings.count)
  return RoutingLossValue(
    loss: total / sites, balance: balance / sites, meanEntropy: entropy / sites)
}

/// `β · Σ ||θ - θ(0)||²` over the preserved experts' parameters: keeps experts that train
/// with the router near where stage 1 left them (Tutorials/the-paper.md §4).
public struct Preservation {
  /// The parameters held near their start, with their starting values.
  public let anchors: [(parameter: Tensor, start: Tensor)]

  /// Remembers `parameters`' current values.
  public init(_ parameters: [Tensor]) {
    anchors = parameters.map { ($0, $0.detached()) }
  }

  /// `β · Σ ||θ - θ(0)||²`, on the tape.
  public func penalty(beta: Double) -> Tensor {
    let squares = anchors.map { anchor -> Tensor in
      let drift = anchor.parameter - anchor.start
      return (drift * drift).sum()
    }
    guard let first = squares.first else { return Tensor(0) }
    return squares.dropFirst().reduce(first, +) * beta
  }
}

/// The rows `tokens` of `matrix`, or all of it.
private func rows(_ matrix: Tensor, _ tokens: [Int]?) -> Tensor {
  guard let tokens, tokens.count != matrix.shape[0] else { return matrix }
  return matrix.gatherRows(tokens, shape: [tokens.count])
}
