// Lesson 06: the Routing Specialization Loss: balance, entropy, and the sign the paper
// contradicts itself on.
// Run: swift run -c release lesson06-routing-specialization-loss

import Autodiff
import Exercises
import Foundation
import LoRAMixer
import NN
import Random

// `--exercise` checks this lesson's exercise (exercise.swift) instead of running it.
if CommandLine.arguments.contains("--exercise") { exit(checkBalance(balance).report()) }

let experts = 4
/// 256 random token vectors of width 8.
func randomTokens() -> Tensor {
  var random = SeededGenerator(seed: 1)
  return Tensor.normal([256, 8], generator: &random)
}

func routing(_ router: Router, k: Int) -> SiteRouting {
  router.route(
    randomTokens(), settings: RoutingSettings(mode: .soft, k: k), training: true)
}

// Step 1. Balance: E · Σ p̄_i f_i is 1 when the load is even, E when one expert takes it all.
print("Step 1: the balance term")
let even = Router(weight: .zeros([experts, 8]))
for k in 1...experts {
  print(
    String(
      format: "  uniform routing, k = %d: balance %.3f", k,
      balanceTerm(routing(even, k: k), tokens: nil, experts: experts).item))
}
let skewed = Router(
  weight: Tensor(shape: [experts, 8], scalars: (0..<(experts * 8)).map { $0 < 8 ? Float(5) : 0 }))
print(
  String(
    format:
      "  expert 0 favoured (row 0 = 5: it wins every token whose features sum above 0): balance %.3f",
    balanceTerm(routing(skewed, k: 1), tokens: nil, experts: experts).item))

// Step 2. Entropy: log E for a token that spreads evenly, 0 for a token that is sure.
print("\nStep 2: per-token entropy")
print(
  String(
    format: "  uniform routing: mean entropy %.3f (log 4 = %.3f)",
    meanEntropy(routing(even, k: 2), tokens: nil).item, log(4.0)))
print(
  String(
    format: "  row 0 = 5: mean entropy %.3f", meanEntropy(routing(skewed, k: 2), tokens: nil).item))

// Step 3. The experiment: train a router on RSL alone with each entropy sign, from the
// same start, and watch what each does to the routing.
print("\nStep 3: 300 steps of RSL alone (alpha 0.1, lambda 0.1), from the same random router")
func train(_ settings: RoutingLossSettings) -> RoutingTally {
  var generator = SeededGenerator(seed: 2)
  let router = Router(experts: experts, inputs: 8, generator: &generator)
  router.weight.assign((router.weight * 50).storage)  // start with some preference per token
  let optimizer = AdamW(parameters: [router.weight])
  for _ in 0..<300 {
    let (_, gradients) = valueAndGradients(of: [router.weight]) {
      routingLoss([(routing(router, k: 2), experts)], tokens: nil, settings: settings).loss
    }
    optimizer.update(gradients, learningRate: 0.02)
  }
  var tally = SiteTally(site: "router", experts: experts, presentCount: experts)
  tally.add(routing(router, k: 2), tokens: nil)
  return RoutingTally(sites: [tally])
}
print("  loss              balance  token entropy  entropy of mean  top weight")
for (name, settings) in [
  ("aux (balance)", RoutingLossSettings(kind: .aux, alpha: 0.1)),
  ("rsl, spread", RoutingLossSettings(kind: .rsl, entropy: .spread, alpha: 0.1, lambda: 0.1)),
  ("rsl, sharpen", RoutingLossSettings(kind: .rsl, entropy: .sharpen, alpha: 0.1, lambda: 0.1)),
] {
  let tally = train(settings)
  print(
    "  " + name.padding(toLength: 16, withPad: " ", startingAt: 0)
      + String(
        format: "  %7.3f  %13.3f  %15.3f  %10.2f", tally.mean(\.balance), tally.mean(\.meanEntropy),
        tally.mean(\.entropyOfMean), tally.mean(\.meanTopWeight)))
}
print("  spread drives each token towards every expert equally (entropy up to log 4 = 1.386);")
print("  sharpen makes each token sure of one expert while the balance term keeps the load even.")
