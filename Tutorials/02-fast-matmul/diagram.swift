import Diagrams
import Kernels

/// The picture of the register tile (`register-tile.svg`), drawn from the kernels' own
/// tile shapes: the AVX2 tile in full (the one a learner's x86 laptop runs), each step of
/// `p` with its loads and fused multiply-adds counted, and every kernel's numbers below.
func registerTileDiagram() -> Diagram {
  let kernel = MatmulKernel.avx2
  let (rows, lanes) = kernel.floatTile
  var diagram = Diagram(
    width: 820, height: 480,
    title: "One step of p in the \(kernel.rawValue) tile: \(rows) × \(2 * lanes) of C in registers")
  let cell = (width: 150.0, height: 30.0)
  let tileLeft = 200.0
  let tileTop = 130.0
  // B's panel: two vectors of `lanes` columns, loaded once per step.
  for j in 0..<2 {
    diagram.box(
      x: tileLeft + Double(j) * (cell.width + 10), y: 60, width: cell.width, height: 34,
      lines: ["B[p, \(j * lanes)..<\((j + 1) * lanes)]", "1 vector load"], fill: .frozen)
  }
  // A's column: one number per row, broadcast to a whole vector.
  for i in 0..<rows {
    let y = tileTop + Double(i) * (cell.height + 6)
    diagram.box(
      x: 40, y: y, width: 120, height: cell.height, lines: ["A[\(i), p] broadcast"],
      fill: .frozen)
    for j in 0..<2 {
      diagram.box(
        x: tileLeft + Double(j) * (cell.width + 10), y: y, width: cell.width,
        height: cell.height, lines: ["acc += A·B  (\(lanes) lanes)"], fill: .trained)
    }
  }
  let loads = rows + 2
  let fmas = 2 * rows
  let right = tileLeft + 2 * cell.width + 40
  for (index, line) in [
    "per step of p:",
    "\(rows) broadcasts of A + 2 vectors of B = \(loads) loads",
    "\(fmas) vector FMAs = \(fmas * lanes) multiply-adds",
    "\(String(format: "%.2f", Double(fmas) / Double(loads))) FMAs per load",
    "registers: \(fmas) accumulators + 2 of B + 1 of A",
    "= \(fmas + 3) of \(kernel.registerFile)",
  ].enumerated() {
    diagram.text(line, x: right, y: 150 + Double(index) * 20, anchor: "start", bold: index == 0)
  }
  // Every kernel's tile, from the same declarations.
  let tableTop = tileTop + Double(rows) * (cell.height + 6) + 40
  let columns = [40.0, 160, 290, 560]
  for (column, header) in zip(
    columns, ["kernel", "tile (Float)", "registers used", "FMAs per load"])
  {
    diagram.text(header, x: column, y: tableTop, anchor: "start", bold: true)
  }
  for (index, each) in MatmulKernel.allCases.enumerated() {
    let (r, l) = each.floatTile
    let cells = [
      each.rawValue, "\(r) × \(2 * l)", "\(2 * r + 3) of \(each.registerFile)",
      String(format: "%.2f", Double(2 * r) / Double(r + 2)),
    ]
    for (column, text) in zip(columns, cells) {
      diagram.text(text, x: column, y: tableTop + 20 + Double(index) * 18, anchor: "start")
    }
  }
  return diagram
}
