import Autodiff
import Foundation

/// One site's routing, counted over many tokens: how the load spread over the experts and
/// how sure each token was.
public struct SiteTally: Sendable {
  /// The site's layer path.
  public let site: String
  /// Experts in the mixture (absent ones included, with zero counts).
  public let experts: Int
  /// Experts present at the site.
  public let presentCount: Int
  /// Tokens counted.
  public private(set) var tokens = 0
  /// Top-k slots taken, by expert.
  public private(set) var selections: [Int]
  /// Top-k slots per token (the k used).
  public private(set) var slotsPerToken = 0
  /// Tokens whose largest weight went to each expert.
  public private(set) var firstChoices: [Int]
  /// The sum over tokens of p, by expert.
  public private(set) var probabilitySums: [Double]
  /// The sum over tokens of the mixing weight w, by expert.
  public private(set) var weightSums: [Double]
  /// The sum over tokens of the routing entropy H(p).
  public private(set) var entropySum = 0.0
  /// The sum over tokens of the largest mixing weight.
  public private(set) var topWeightSum = 0.0

  /// An empty tally for `site`.
  public init(site: String, experts: Int, presentCount: Int) {
    self.site = site
    self.experts = experts
    self.presentCount = presentCount
    selections = Array(repeating: 0, count: experts)
    firstChoices = Array(repeating: 0, count: experts)
    probabilitySums = Array(repeating: 0, count: experts)
    weightSums = Array(repeating: 0, count: experts)
  }

  /// Counts the rows `tokens` (nil: all) of `routing`.
  public mutating func add(_ routing: SiteRouting, tokens rows: [Int]?) {
    let probabilities = routing.probabilities.scalars
    let weights = routing.weights.scalars
    slotsPerToken = routing.k
    for token in rows ?? Array(0..<routing.probabilities.shape[0]) {
      tokens += 1
      let p = probabilities[token * experts..<(token + 1) * experts]
      let w = weights[token * experts..<(token + 1) * experts]
      for slot in 0..<routing.k { selections[routing.selected[token * routing.k + slot]] += 1 }
      firstChoices[routing.selected[token * routing.k]] += 1
      for (expert, value) in zip(0..., p) {
        probabilitySums[expert] += value
        if value > 0 { entropySum -= value * Foundation.log(value) }
      }
      topWeightSum += w.max() ?? 0
      for (expert, value) in zip(0..., w) { weightSums[expert] += value }
    }
  }

  /// Each expert's share of the top-k slots (sums to 1).
  public var selectionShare: [Double] {
    selections.map { Double($0) / Double(max(1, tokens * slotsPerToken)) }
  }
  /// Each expert's share of first choices (sums to 1).
  public var firstChoiceShare: [Double] {
    firstChoices.map { Double($0) / Double(max(1, tokens)) }
  }
  /// p̄: the mean dense probability of each expert.
  public var meanProbability: [Double] { probabilitySums.map { $0 / Double(max(1, tokens)) } }
  /// The mean mixing weight of each expert (sums to 1): how much of the update it supplies.
  public var meanWeight: [Double] { weightSums.map { $0 / Double(max(1, tokens)) } }
  /// The mean over tokens of the largest mixing weight: 1 when every token uses one expert.
  public var meanTopWeight: Double { topWeightSum / Double(max(1, tokens)) }
  /// The mean per-token routing entropy (nats): 0 when every token is sure.
  public var meanEntropy: Double { entropySum / Double(max(1, tokens)) }
  /// The entropy of p̄ (nats): log E when the load is even across the batch.
  public var entropyOfMean: Double {
    -meanProbability.reduce(0) { $1 > 0 ? $0 + $1 * Foundation.log($1) : $0 }
  }
  /// `E · Σ p̄_i f_i`, the balance term: 1 when perfectly balanced.
  public var balance: Double {
    Double(presentCount) * zip(meanProbability, selectionShare).reduce(0) { $0 + $1.0 * $1.1 }
  }
  /// Whether one expert is the first choice of at least 95% of the tokens while others are
  /// present: the router has collapsed onto it.
  public var collapsed: Bool { presentCount > 1 && (firstChoiceShare.max() ?? 0) >= 0.95 }
}

/// The routing of every site of a mixture, counted over many tokens.
public struct RoutingTally: Sendable {
  /// One tally per site, in the mixture's order.
  public private(set) var sites: [SiteTally]

  /// A tally of the given sites.
  public init(sites: [SiteTally]) { self.sites = sites }

  /// Empty tallies for the sites of `mixture`.
  public init(_ mixture: Mixture) {
    sites = mixture.sites.map {
      SiteTally(
        site: $0.path, experts: mixture.expertNames.count,
        presentCount: $0.site.presentCount)
    }
  }

  /// Counts `routings`, made by `mixture`'s sites, over `tokens` (nil: every row).
  public mutating func add(_ routings: [SiteRecord], of mixture: Mixture, tokens: [Int]?) {
    for (site, routing) in routings {
      sites[mixture.siteIndex[ObjectIdentifier(site)]!].add(routing, tokens: tokens)
    }
  }

  /// The mean over sites of `value`.
  public func mean(_ value: (SiteTally) -> Double) -> Double {
    sites.map(value).reduce(0, +) / Double(max(1, sites.count))
  }

  /// The mean over sites of each expert's share of the top-k slots.
  public var selectionShare: [Double] { meanOfVectors(\.selectionShare) }
  /// The mean over sites of each expert's share of first choices.
  public var firstChoiceShare: [Double] { meanOfVectors(\.firstChoiceShare) }

  /// The mean of `value` over each decoder layer's sites, layer by layer (the layer read
  /// from the site's path, `Mixture.decoderLayer`).
  public func meanByLayer(_ value: (SiteTally) -> Double) -> [Double] {
    let layers = sites.map { Mixture.decoderLayer($0.site) }
    var sums = [Double](repeating: 0, count: (layers.max() ?? -1) + 1)
    var counts = sums
    for (site, layer) in zip(sites, layers) {
      sums[layer] += value(site)
      counts[layer] += 1
    }
    return zip(sums, counts).map { $0 / max(1, $1) }
  }

  /// The sites where routing collapsed onto one expert.
  public var collapsedSites: [SiteTally] { sites.filter(\.collapsed) }

  /// The mean over sites of `vector`.
  func meanOfVectors(_ vector: (SiteTally) -> [Double]) -> [Double] {
    guard let first = sites.first else { return [] }
    var total = [Double](repeating: 0, count: first.experts)
    for site in sites {
      for (expert, value) in vector(site).enumerated() { total[expert] += value }
    }
    return total.map { $0 / Double(sites.count) }
  }

  /// One line: balance, mean per-token entropy, entropy of the mean routing, mean top weight
  /// and each expert's share of top-k slots, averaged over sites.
  public func summary(expertNames: [String]) -> String {
    let shares = zip(expertNames, selectionShare).map {
      "\($0) \(String(format: "%.0f%%", 100 * $1))"
    }
    return String(
      format: "balance %.3f, token entropy %.3f, entropy of mean %.3f, top weight %.2f; slots: %@",
      mean(\.balance), mean(\.meanEntropy), mean(\.entropyOfMean), mean(\.meanTopWeight),
      shares.joined(separator: ", "))
  }
}
