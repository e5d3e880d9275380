import Autodiff
import Kernels
import NN

/// A frozen Linear's mixture of LoRA experts (Tutorials/the-paper.md §2):
///
///     y = W x + Σ_e w_e(x) · s_e · B_e (A_e x)
///
/// with the weights w from the site's router. Experts are mixed by their outputs, never by
/// averaging their matrices. An expert with no weights at this site (public adapters target
/// different layers) is left out of the router's softmax, not treated as a zero expert.
public final class RoutedSite: Module, LinearAdapter {
  /// The experts, by position in the mixture; nil where an expert has no weights here.
  public let experts: [LoRA?]
  /// The experts' names, by position.
  public let names: [String]
  /// The site's router.
  public let router: Router
  /// What the sites of the mixture share: the settings, and the running forward pass.
  public let state: RoutingState
  /// Outputs of the Linear.
  let outputs: Int
  /// Where each present expert's rank sits among the stacked ranks, fixed by the experts.
  let ranks: [RankColumns]

  /// A site over `experts` (nil where absent) for a Linear with `outputs` outputs; the
  /// router leaves out exactly the absent experts.
  public init(
    experts: [LoRA?], names: [String], router: Router, outputs: Int, state: RoutingState
  ) {
    precondition(
      experts.count == names.count && experts.count == router.weight.shape[0],
      "one router row per expert")
    precondition(
      router.present == experts.map { $0 != nil }, "the router must leave out the absent experts")
    self.experts = experts
    self.names = names
    self.router = router
    self.outputs = outputs
    self.state = state
    ranks = stackedRanks(experts)
  }

  /// How many experts have weights here: the E of the balance term.
  public var presentCount: Int { router.present.count { $0 } }

  /// The router, then each present expert under its name, as the mixer's files name them.
  override public var children: [(name: String, module: Module)] {
    [("router", router)]
      + zip(names, experts).compactMap { name, expert in expert.map { ("experts.\(name)", $0) } }
  }

  /// `Σ_e w_e(x) s_e B_e (A_e x)` for `x` of shape `[..., inputs]`, with w from the router.
  public func delta(_ x: Tensor) -> Tensor {
    let routing = route(x)
    let mixed =
      routing.sparse
      ? selectedExperts(x.reshaped([-1, x.shape.last!]), routing)
      : weightedExperts(x, experts, weights: routing.weights, ranks: ranks)
    return mixed.reshaped(Array(x.shape.dropLast()) + [outputs])
  }

  /// `W x + Σ_e w_e(x) s_e B_e (A_e x)` as the Linear's whole output, when the routing is
  /// dense (training, `soft` or `hardsoft`): the experts' product is added into `x · Wᵀ` by
  /// the matmul itself (`linearPlusUpdate`), not as a third array: the bench mixture's
  /// training step ran 1.03 to 1.06 times as fast so (AMD EPYC Zen 3, 2 threads, steps
  /// alternated), with the same bits. Sparse routing (inference, `topk`) keeps the Linear's
  /// plain sum (nil).
  public func output(_ x: Tensor, weight: Tensor) -> Tensor? {
    guard Self.addsIntoBase && state.phase == .training && state.settings.mode != .topk else {
      return nil
    }
    let routing = route(x)
    // Hard-soft routing mixes by the top-k weights: when k leaves experts out, their
    // ranks are zero in every token's row but the tokens that selected them, and products
    // skip them: the two factor gradients on every kernel, the update and `dh · A_all` on
    // every kernel but AVX-512's.
    let zeroBlocks =
      state.settings.mode == .hardsoft && routing.k < presentCount
      ? selectedRows(routing) : nil
    let (weighted, b) = stackedExperts(
      x, experts, weights: routing.weights, ranks: ranks, zeroBlocks: zeroBlocks)
    return linearPlusUpdate(x, weight: weight, update: weighted, b: b, zeroBlocks: zeroBlocks)
  }

  /// Routes the rows of `x` (`[..., inputs]`) and records the routing for the routing loss.
  ///
  /// The router and the experts read x as it is, whatever its rank, never a reshaped copy:
  /// then each of their gradients is added into x's own as it is formed. A copy receives its
  /// gradient apart, which then costs one more pass to add to x's (14 such passes took 0.55
  /// ms of the bench mixture's step; Intel Xeon, Emerald Rapids, `--profile`).
  func route(_ x: Tensor) -> SiteRouting {
    // `[batch, length, inputs]` from the model: sequences of `length`; a matrix is one.
    let routing = router.route(
      x, length: x.rank == 3 ? x.shape[1] : nil, settings: state.settings,
      training: state.phase == .training)
    state.record(self, routing)
    return routing
  }

  /// The present experts' columns of the stacked ranks, each with the tokens that selected
  /// the expert: where a hard routing's weighted ranks are not zero.
  func selectedRows(_ routing: SiteRouting) -> BlockRows {
    // The routing selects among all the experts, the blocks are the present ones'.
    var block = [Int](repeating: 0, count: experts.count)
    for (index, rank) in ranks.enumerated() { block[rank.expert] = index }
    let selected =
      ranks.count == experts.count ? routing.selected : routing.selected.map { block[$0] }
    return BlockRows(blocks: ranks.map(\.columns), selected: selected, perRow: routing.k)
  }

  /// Whether `output` adds the experts into the base product (the default); off, the
  /// Linear's plain sum, which tests hold it against bit for bit.
  @TaskLocal static var addsIntoBase = true

  /// `Σ_e w_e s_e B_e (A_e x)` with the weights given, `[tokens, experts]` for the rows of
  /// `x`, the router bypassed: label routing (one-hot on a task's expert) and tests.
  public func delta(_ x: Tensor, weights: Tensor) -> Tensor {
    let rows = x.reshaped([-1, x.shape.last!])
    precondition(weights.shape == [rows.shape[0], experts.count], "weights are [tokens, experts]")
    return weightedExperts(rows, experts, weights: weights, ranks: ranks)
      .reshaped(Array(x.shape.dropLast()) + [outputs])
  }

  /// Only the selected experts' outputs: each expert computes the tokens that chose it,
  /// weighted, and adds them back into place.
  func selectedExperts(_ rows: Tensor, _ routing: SiteRouting) -> Tensor {
    mixSelectedExperts(rows, routing, experts: experts.count, width: outputs) { index, input in
      // The router leaves absent experts out of its softmax, so it never selects one.
      guard let expert = experts[index] else {
        preconditionFailure("the router selected expert \(index), which is absent here")
      }
      return expert.delta(input)
    }
  }
}

/// Every expert's output, weighted, `[tokens, outputs]`, for the rows of x (`[...,
/// inputs]`, read as they are) and the weights `[tokens, experts]`:
/// `weightedRanks(x · A_allᵀ) · B_allᵀ`, where A_all and B_all stack the present experts'
/// factors (their ranks at `ranks`, `stackedRanks(experts)`) and `weightedRanks` multiplies
/// each expert's columns by its weight and scale. Two large products instead of two per
/// expert. A routed site's dense routing and MoLE's gated sites both mix so.
func weightedExperts(_ rows: Tensor, _ experts: [LoRA?], weights: Tensor, ranks: [RankColumns])
  -> Tensor
{
  let (weighted, b) = stackedExperts(rows, experts, weights: weights, ranks: ranks)
  return matmul(weighted, b, transposeB: true)
}

/// `weightedExperts` but its last product: `weightedRanks(x · A_allᵀ)` and `B_all`. With
/// `zeroBlocks` (the experts' columns, under hard routing) the gradient of `x · A_allᵀ`
/// skips the zero blocks (`hardRoutedRanks`).
func stackedExperts(
  _ rows: Tensor, _ experts: [LoRA?], weights: Tensor, ranks: [RankColumns],
  zeroBlocks: BlockRows? = nil
) -> (weighted: Tensor, b: Tensor) {
  let present = experts.compactMap { $0 }
  let a = concatenate(present.map(\.a.weight), along: 0)  // [Σr, inputs]
  let b = concatenate(present.map(\.b.weight), along: 1)  // [outputs, Σr]
  let h =
    zeroBlocks.map { hardRoutedRanks(rows, a, zeroBlocks: $0) }
    ?? matmul(rows, a, transposeB: true).reshaped([-1, a.shape[0]])
  return (weightedRanks(h, weights: weights, ranks: ranks), b)
}

/// `Σ_e w_e · f_e(x)` for each of the rows `[tokens, inputs]` over the experts it selected,
/// `[tokens, width]`: expert e runs only on the rows that chose it (`output(e, thoseRows)`),
/// its outputs weighted by the routing's weights and added back into place. A routed site's
/// experts and MixLoRA's feed-forward experts both mix so.
func mixSelectedExperts(
  _ rows: Tensor, _ routing: SiteRouting, experts: Int, width: Int,
  _ output: (Int, Tensor) -> Tensor
) -> Tensor {
  let tokens = rows.shape[0]
  var chosenBy = [[Int]](repeating: [], count: experts)
  for (position, expert) in routing.selected.enumerated() {
    chosenBy[expert].append(position / routing.k)
  }
  var result: Tensor? = nil
  for (index, indices) in chosenBy.enumerated() where !indices.isEmpty {
    let weight = routing.weights.sliced(along: 1, index..<index + 1).gatherRows(
      indices, shape: [indices.count])
    let output = output(index, rows.gatherRows(indices, shape: [indices.count]))
    let placed = (output * weight).scatterAddRows(indices, rowCount: tokens)
    result = result.map { $0 + placed } ?? placed
  }
  return result ?? Tensor.zeros([tokens, width], dtype: rows.dtype)
}
