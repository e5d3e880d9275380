import Autodiff
import Diagrams

/// The picture of step 3 (`tape.svg`), drawn from a real tape: y = tanh(w·x + b) recorded
/// with w and b requiring a gradient and x not, its records in order with their edges,
/// then the backward walk from the last record to the first.
func tapeDiagram() -> Diagram {
  let x = Tensor(shape: [1], scalars: [0.5])
  let w = Tensor(shape: [1], scalars: [2.0], requiresGradient: true)
  let b = Tensor(shape: [1], scalars: [-1.0], requiresGradient: true)
  let tape = Tape()
  _ = tape.record { tanh(w * x + b) }
  var names = [ObjectIdentifier(x): "x", ObjectIdentifier(w): "w", ObjectIdentifier(b): "b"]
  let entries = tape.entries
  for (index, entry) in entries.enumerated() {
    names[ObjectIdentifier(entry.output)] = index == entries.count - 1 ? "y" : "z\(index)"
  }
  func name(_ tensor: Tensor) -> String { names[ObjectIdentifier(tensor)] ?? "?" }

  var diagram = Diagram(
    width: 820, height: 400, title: "The tape of y = tanh(w·x + b): records, edges, backward")
  // The leaves: what the recorded operations read.
  let leaves = [
    (x, "given: no gradient, no edge"), (w, "requires a gradient"), (b, "requires a gradient"),
  ]
  var leafX: [String: Double] = [:]
  for (index, (tensor, note)) in leaves.enumerated() {
    let left = 40 + Double(index) * 260
    leafX[name(tensor)] = left + 90
    diagram.box(
      x: left, y: 50, width: 180, height: 40, lines: [name(tensor), note],
      fill: tensor.requiresGradient ? .trained : .frozen)
  }
  // The records, left to right, each with an arrow from every input it has an edge to.
  let recordWidth = 150.0
  var recordX: [String: Double] = [:]
  for (index, entry) in entries.enumerated() {
    let left = 40 + Double(index) * (recordWidth + 110)
    diagram.box(
      x: left, y: 170, width: recordWidth, height: 46,
      lines: ["record \(index): \(entry.operation)", "output \(name(entry.output))"])
    for input in entry.inputs {
      if let leaf = leafX[name(input)] {
        diagram.arrow(
          from: (leaf, 90), to: (left + recordWidth / 2, 170), label: "edge to \(name(input))",
          color: "#9a5b00")
      } else {
        diagram.arrow(
          from: (recordX[name(input)]! + recordWidth, 193), to: (left, 193),
          label: "edge to \(name(input))", color: "#9a5b00")
      }
    }
    recordX[name(entry.output)] = left
  }
  // Backward: pending gradients handed from the last record to the first.
  var pending = ["dy/dy = 1"]
  for entry in entries.reversed() {
    pending.append(entry.inputs.map { "d\(name($0))" }.joined(separator: ", "))
  }
  for (index, gradient) in pending.enumerated() {
    let left = 670 - Double(index) * 210
    diagram.box(x: left, y: 300, width: 120, height: 36, lines: [gradient], fill: .router)
    if index > 0 {
      diagram.arrow(
        from: (left + 210, 318), to: (left + 120, 318),
        label: "VJP of \(entries[entries.count - index].operation)", dashed: true)
    }
  }
  diagram.text(
    "backward: records from last to first; each turns its output's gradient into its inputs'",
    x: 40, y: 370, size: 11, anchor: "start", color: "#555")
  return diagram
}
