import Autodiff
import NN
import Random
import ToyTasks
import Training

/// LoRAHub (Huang et al. 2023; its code: sail-sg/lorahub), one of the paper's baselines:
/// for one task, a weight per frozen expert that composes the experts *by their matrices*,
///
///     A = Σ_i w_i A_i,   B = Σ_i w_i B_i,
///
/// found by a gradient-free search that scores a weight vector by the composed adapter's
/// loss on a few of the task's examples plus an L1 penalty. Nothing is routed: the result
/// is one ordinary LoRA per layer, fixed for the task, and it must be told the task.
/// (B·A of the composition holds cross terms w_i w_j B_i A_j: composing matrices is not
/// mixing outputs, which is what LoRA-Mixer does.)
public struct LoRAHubRecipe: Equatable, Hashable, Sendable {
  /// Examples of the task the search scores, drawn from its training split (LoRAHub: 5).
  public var examples = 5
  /// Evaluations of the score, the start included (LoRAHub's `max_inference_step`, 40 in
  /// its examples).
  public var budget = 40
  /// Weight of the penalty on the mean of |w| (LoRAHub: 0.05).
  public var l1 = 0.05
  /// Each weight stays within ±bound (LoRAHub: 1.5).
  public var bound = 1.5
  /// The search's first step size, a third of the bound (our choice; see
  /// `onePlusOneSearch`).
  public var initialStep = 0.5

  /// LoRAHub's published settings.
  public init() {}
}

/// The adapters of `experts` (each by layer path) composed by `weights`: at every path the
/// experts share, a LoRA with `A = Σ w_i A_i`, `B = Σ w_i B_i` and the experts' scale. The
/// experts must agree on rank and scale at each path, as LoRAHub requires.
public func composeByMatrices(_ experts: [[String: LoRA]], weights: [Double]) -> [String: LoRA] {
  precondition(experts.count == weights.count && !experts.isEmpty, "one weight per expert")
  var composed: [String: LoRA] = [:]
  for path in experts[0].keys where experts.allSatisfy({ $0[path] != nil }) {
    let parts = experts.map { $0[path]! }
    precondition(
      parts.allSatisfy { $0.rank == parts[0].rank && $0.scale == parts[0].scale },
      "experts composed by their matrices need the same rank and scale at \(path)")
    func sum(_ factor: (LoRA) -> Tensor) -> Tensor {
      let terms = zip(parts, weights).map { factor($0).detached() * $1 }
      return terms.dropFirst().reduce(terms[0], +)
    }
    composed[path] = LoRA(
      a: Linear(weight: sum(\.a.weight)), b: Linear(weight: sum(\.b.weight)),
      scale: parts[0].scale)
  }
  return composed
}

/// A (1+1) evolution strategy with the one-fifth success rule (Rechenberg): from `start`,
/// each evaluation tries the best point so far plus a Gaussian step of size σ (clipped into
/// ±`bound`), keeps it if it scores no worse, and then grows σ by e^(1/3) after a success
/// or shrinks it by e^(−1/12) after a failure, so σ holds steady when one try in five
/// succeeds. `budget` counts every evaluation, the start's included; deterministic for a
/// `seed`.
///
/// LoRAHub calls nevergrad's NGOpt, a selector that picks an algorithm by dimension and
/// budget; with a handful of weights and 40 evaluations a (1+1)-ES is the simplest search
/// that adapts its step, and nevergrad has it as `OnePlusOne`. Our choice, not LoRAHub's
/// code.
public func onePlusOneSearch(
  start: [Double], bound: Double, step: Double, budget: Int, seed: UInt64,
  score: ([Double]) -> Double
) -> (point: [Double], score: Double) {
  precondition(budget >= 1, "the search needs at least one evaluation")
  var random = SeededGenerator(seed: seed)
  var best = (point: start, score: score(start))
  var sigma = step
  for _ in 1..<budget {
    let candidate = best.point.map { min(bound, max(-bound, $0 + sigma * random.nextNormal())) }
    let value = score(candidate)
    if value <= best.score {
      best = (candidate, value)
      sigma *= 1.3956124250860895  // e^(1/3)
    } else {
      sigma *= 0.9200444146293233  // e^(−1/12)
    }
  }
  return best
}

extension LoRAHubRecipe {
  /// Searches the weights that compose `experts` (each by layer path) for the task of
  /// `examples` (the first `self.examples` of them are scored): attaches each candidate's
  /// composition to `model`, scores its answer loss plus `l1` times the mean |w|, and leaves
  /// the best composition attached. Returns the weights and their score.
  public func search(
    _ model: any CausalLanguageModel, experts: [[String: LoRA]], examples: [Example],
    tokenizer: Tokenizer, seed: UInt64
  ) -> (weights: [Double], score: Double) {
    let scored = Array(examples.prefix(self.examples))
    var layers: [String: Linear] = [:]
    for (path, module) in model.namedModules() { layers[path] = module as? Linear }
    func attach(_ weights: [Double]) {
      for (path, lora) in composeByMatrices(experts, weights: weights) {
        layers[path]!.adapter = lora
      }
    }
    let best = onePlusOneSearch(
      start: [Double](repeating: 0, count: experts.count), bound: bound, step: initialStep,
      budget: budget, seed: seed
    ) { weights in
      attach(weights)
      let penalty = l1 * weights.map(abs).reduce(0, +) / Double(weights.count)
      return model.loss(scored, tokenizer: tokenizer).value.item + penalty
    }
    attach(best.point)
    return (best.point, best.score)
  }
}
