// Lesson 05: routing a token over experts: soft, top-k and hard-soft (straight-through).
// Run: swift run -c release lesson05-routing

import Autodiff
import Diagrams
import Exercises
import Foundation
import LoRAMixer

// `--exercise` checks this lesson's exercise (exercise.swift) instead of running it.
if CommandLine.arguments.contains("--exercise") {
  exit(checkRouterGradient(softRouterGradient).report())
}
// `--diagram FILE` draws this lesson's picture (routed-site.svg) from the real code.
if try routedSiteDiagram().writeIfAsked() { exit(0) }

func show(_ values: [Double]) -> String {
  values.map { String(format: "%.3f", $0) }.joined(separator: " ")
}

// Step 1. One token, four experts: logits, probabilities, the top-2 mask, renormalised.
print("Step 1: one token's routing over 4 experts, top-2")
let router = Router(
  weight: Tensor(
    shape: [4, 3], scalars: [0.9, -0.2, 0.4, 0.3, 0.8, -0.5, -0.6, 0.1, 0.2, 0.5, 0.4, 0.3]))
let token = Tensor(shape: [1, 3], scalars: [1.0, 0.5, -0.5])
for mode in RoutingMode.allCases {
  let routing = router.route(
    token, settings: RoutingSettings(mode: mode, k: 2),
    training: true)
  print(
    "  \(mode.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) w = \(show(routing.weights.scalars))"
  )
}
let dense = router.route(
  token, settings: RoutingSettings(mode: .soft, k: 2),
  training: true)
print("  p (dense softmax) = \(show(dense.probabilities.scalars)), top-2 = \(dense.selected)")

// Step 2. The gradient each mode sends back to the router, for a loss linear in w.
print("\nStep 2: the gradient reaching the router's weights, loss = Σ c · w")
let c = Tensor(shape: [1, 4], scalars: [1.0, -2.0, 0.5, 3.0])
@MainActor func routerGradient(_ mode: RoutingMode) -> [Double] {
  valueAndGradients(of: [router.weight]) {
    let routing = router.route(
      token, settings: RoutingSettings(mode: mode, k: 2),
      training: true)
    return (routing.weights * c).sum()
  }.gradients[0].scalars
}
for mode in RoutingMode.allCases {
  let rows = routerGradient(mode)
  let perExpert = (0..<4).map { e in rows[e * 3..<e * 3 + 3].map(abs).reduce(0, +) }
  print(
    "  \(mode.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) |dL/dR row| per expert = \(show(perExpert))"
  )
}
print(
  "  top-k leaves the two unselected experts' rows at zero; hard-soft reaches all four, as soft does"
)

// Step 3. The two identities that the tests check instead of finite differences.
print("\nStep 3: hard-soft's identities")
let hardsoftForward = router.route(
  token, settings: RoutingSettings(mode: .hardsoft, k: 2),
  training: true
).weights.scalars
let topkForward = router.route(
  token, settings: RoutingSettings(mode: .topk, k: 2),
  training: true
).weights.scalars
print("  forward equals top-k's: \(hardsoftForward == topkForward)")
print("  backward equals soft's: \(routerGradient(.hardsoft) == routerGradient(.soft))")

// Step 4. Why finite differences cannot check hard-soft: they measure the forward function,
// which is top-k's, so they agree with top-k's gradient and not with the straight-through one.
print("\nStep 4: finite differences see the forward function")
let h = 1e-6
var numerical: [Double] = []
for index in 0..<12 {
  func loss(_ shift: Double) -> Double {
    var values = router.weight.scalars
    values[index] += shift
    let moved = Router(weight: Tensor(shape: [4, 3], scalars: values))
    let routing = moved.route(
      token,
      settings: RoutingSettings(mode: .hardsoft, k: 2), training: true)
    return (routing.weights * c).sum().item
  }
  numerical.append((loss(h) - loss(-h)) / (2 * h))
}
func distance(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).map { abs($0 - $1) }.max()! }
print(
  String(
    format: "  finite differences against top-k's gradient: %.1e",
    distance(numerical, routerGradient(.topk))))
print(
  String(
    format: "  finite differences against hard-soft's gradient: %.1e",
    distance(numerical, routerGradient(.hardsoft))))
