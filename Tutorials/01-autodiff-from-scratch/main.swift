// Lesson 01: from one scalar derivative to the tape.
// Run: swift run lesson01-autodiff   (README.md walks through each step)

import Autodiff
import Diagrams
import Exercises
import Foundation
import Random

// `--exercise` checks this lesson's exercise (exercise.swift) instead of running it.
if CommandLine.arguments.contains("--exercise") { exit(checkSine(sine).report()) }
// `--diagram FILE` draws step 3's picture (tape.svg) from a real tape.
if try tapeDiagram().writeIfAsked() { exit(0) }

func show(_ label: String, _ value: Double) {
  print("  \(label) = \(String(format: "%.6f", value))")
}

func show(_ label: String, _ tensor: Tensor) {
  let values = tensor.scalars.map { String(format: "%.4f", $0) }.joined(separator: ", ")
  print("  \(label) \(tensor.shape) = [\(values)]")
}

// Step 1. One derivative, by hand and by finite differences.
print("Step 1: f(x) = x² + 3x at x = 2")
func f(_ x: Double) -> Double { x * x + 3 * x }
let h = 1e-6
show("f'(2) by the rule 2x + 3", 2 * 2 + 3)
show("f'(2) by (f(x+h) − f(x−h)) / 2h", (f(2 + h) - f(2 - h)) / (2 * h))
// x² + 3x has no third derivative, so its central difference has no truncation error. tanh
// has one: its error shrinks like h² until rounding, which grows like ε/h, takes over.
print("  the error of (tanh(x+h) − tanh(x−h)) / 2h at x = 0.5, against 1 − tanh²(0.5):")
let exactSlope = 1 - tanh(0.5) * tanh(0.5)
for power in 1...10 {
  let step = Foundation.pow(10, -Double(power))
  let estimate = (tanh(0.5 + step) - tanh(0.5 - step)) / (2 * step)
  print(String(format: "    h = 1e-%02d: %.1e", power, abs(estimate - exactSlope)))
}

// Step 2. The chain rule, run backward by hand: y = tanh(w·x + b).
print("\nStep 2: y = tanh(w·x + b) with w = 0.5, x = 2, b = -0.25, backward by hand")
let (w, x, b) = (0.5, 2.0, -0.25)
let z = w * x + b  // forward, keeping the intermediate value
let y = tanh(z)
let dy = 1.0  // start: dy/dy = 1
let dz = dy * (1 - y * y)  // tanh's local derivative
let dw = dz * x  // z = w·x + b: dz/dw = x
let db = dz * 1  // dz/db = 1
show("y", y)
show("dy/dw", dw)
show("dy/db", db)

// Step 3. The same on the tape: each operation records how to pass a gradient back.
print("\nStep 3: the same expression on a tape")
let wT = Tensor(w, dtype: .float64)
let bT = Tensor(b, dtype: .float64)
wT.requiresGradient = true
bT.requiresGradient = true
let xT = Tensor(x, dtype: .float64)
let tape = Tape()
let yT = tape.record { Autodiff.tanh(wT * xT + bT) }
print("  recorded operations: \(tape.operations.joined(separator: ", "))")
let gradients = tape.gradients(of: yT)
show("dy/dw", gradients[wT]!.item)
show("dy/db", gradients[bT]!.item)

// Step 4. A tensor used twice receives both contributions.
print("\nStep 4: y = Σ (v·v + v): v is used three times, dy/dv = 2v + 1")
let v = Tensor(shape: [3], scalars: [0.5, -1.0, 2.0], requiresGradient: true)
let twice = Tape()
let sum = twice.record { (v * v + v).sum() }
show("dy/dv", twice.gradients(of: sum)[v]!)
show("dy/dv again (backward only reads the tape)", twice.gradients(of: sum)[v]!)

// Step 5. Broadcasting: a bias of shape [3] added to every row of a [2, 3] matrix.
print("\nStep 5: broadcasting, Σ (X + bias) with X [2, 3] and bias [3]")
let matrix = Tensor(shape: [2, 3], scalars: [1.0, 2, 3, 4, 5, 6], requiresGradient: true)
let bias = Tensor(shape: [3], scalars: [0.1, 0.2, 0.3], requiresGradient: true)
let broadcastTape = Tape()
let total = broadcastTape.record { (matrix + bias).sum() }
let broadcastGradients = broadcastTape.gradients(of: total)
show("d/dX", broadcastGradients[matrix]!)
show("d/dbias (summed over the broadcast rows)", broadcastGradients[bias]!)

// Step 6. A small model: logits = x · W, cross-entropy against targets.
print("\nStep 6: cross-entropy of x · W, x [4, 3], W [3, 2]")
var generator = SeededGenerator(seed: 1)
let inputs = Tensor.normal([4, 3], dtype: .float64, generator: &generator)
let weights = Tensor.normal([3, 2], dtype: .float64, generator: &generator)
weights.requiresGradient = true
let modelTape = Tape()
let loss = modelTape.record {
  crossEntropy(logits: matmul(inputs, weights), targets: [0, 1, 1, 0])
}
show("loss", loss.item)
print("  recorded operations: \(modelTape.operations.joined(separator: ", "))")
show("dloss/dW", modelTape.gradients(of: loss)[weights]!)

// Step 7. The gradient checker compares the tape with finite differences.
print("\nStep 7: the gradient checker")
let model = GradientCheck.check(
  { crossEntropy(logits: matmul(inputs, $0[0]), targets: [0, 1, 1, 0]) }, at: [weights.detached()])
print(
  "  cross-entropy model: relative error \(String(format: "%.1e", model.maxRelativeError)), passed: \(model.passed)"
)

// A new operation with a planted bug: x² whose backward says g·x instead of g·2x.
func wrongSquare(_ x: Tensor) -> Tensor {
  let y = x.detached() * x.detached()
  return y.recorded((x, { g in g * x }), operation: "wrongSquare")
}
let planted = GradientCheck.check(
  { wrongSquare($0[0]).sum() }, at: [Tensor(shape: [2], scalars: [1.0, 3.0])])
print(
  "  planted bug: relative error \(String(format: "%.2f", planted.maxRelativeError)), passed: \(planted.passed)"
)
