import Experiments
import Foundation
import LoRAMixer
import NN
import SafeTensors
import ToyTasks

/// `tinymixer route <mixer>`: how each task's tokens are routed over the experts, as a
/// heatmap in the terminal and an SVG file, and optionally one input token by token.
enum RouteCommand: Command {
  static let name = "route"
  static let summary = "show how a saved mixer routes each task's tokens (heatmap, SVG, tokens)"
  static let synopsis =
    "tinymixer route <mixer-dir> [--layer N] [--numbers] [--examples N] [--svg FILE] [--text PROMPT] [--base DIR]"
  static let options: [Option] = [
    Option(
      name: "layer", valueName: "N", help: "one layer's sites only (default: every site, averaged)"),
    Option(name: "numbers", valueName: nil, help: "print the percentages beside the shades"),
    Option(name: "examples", valueName: "N", help: "test examples per task (default: 200)"),
    Option(
      name: "svg", valueName: "FILE",
      help: "where to write the heatmap (default: <mixer-dir>/routing.svg)"),
    Option(
      name: "text", valueName: "PROMPT",
      help: "also show which experts each token of PROMPT chose at each site"),
    Option(
      name: "base", valueName: "DIR",
      help: "the base model (default: the one recorded in the mixer)"),
    .threads, Locations.datasetsOption,
  ]

  static func run(_ arguments: Arguments) throws -> Int32 {
    try arguments.expectPositionals(1, 1, "the mixer folder (written by tinymixer mix)")
    let folder = URL(fileURLWithPath: arguments.positionals[0])
    let config = try MixerFiles.readConfig(folder)
    let project = try Project(arguments)
    let (model, _, _) = try project.loadBase(
      arguments, recorded: URL(fileURLWithPath: config.baseModel))
    if let text = arguments.string("text"),
      project.tokenizer.encode(text).count + 2 > model.contextLength
    {
      throw ToolError.usage(
        "--text is longer than the model's context of \(model.contextLength) tokens")
    }
    let (mixture, _) = try MixerFiles.load(from: folder, onto: model)
    let count = try arguments.integer("examples", default: 200, in: 1...100_000)
    let layers = model.layerCount
    let layer = try arguments.string("layer").map { _ in
      try arguments.integer("layer", default: 0, in: 0...(layers - 1))
    }
    // The rows: the toy tasks the experts are named after, or, for experts named otherwise
    // (plug and play), every toy task.
    let named = mixture.expertNames.compactMap(ToyTask.named)
    let tasks = named.isEmpty ? ToyTask.all : named

    // The mean mixing weight of each expert on each task's tokens, at the chosen sites.
    let inLayer = { (path: String) in layer.map { path.contains("layers.\($0).") } ?? true }
    var rows: [[Double]] = []
    for task in tasks {
      let tally = mixture.tally(
        Array(project.examples(task, .test).prefix(count)), tokenizer: project.tokenizer)
      let sites = tally.sites.filter { inLayer($0.site) }
      rows.append(
        (0..<mixture.expertNames.count).map { expert in
          sites.map { $0.meanWeight[expert] }.reduce(0, +) / Double(sites.count)
        })
    }
    let scope = layer.map { "layer \($0)'s sites" } ?? "all \(mixture.sites.count) sites, averaged"
    print(
      "mean mixing weight per expert, by task (inference routing, top-\(mixture.settings.inferenceK); \(scope); up to \(count) test examples per task)\n"
    )
    print(
      heatmap(
        rows, rowNames: tasks.map(\.name), columnNames: mixture.expertNames,
        numbers: arguments.has("numbers")))
    let svgURL = URL(
      fileURLWithPath: arguments.string("svg") ?? folder.appendingPathComponent("routing.svg").path)
    try writeAtomically(
      Data(
        svg(
          rows, rowNames: tasks.map(\.name), columnNames: mixture.expertNames,
          title: "mean mixing weight per expert, by task (\(scope))"
        ).utf8),
      to: svgURL)
    print("\nSVG written to \(svgURL.path)")

    if let text = arguments.string("text") {
      print("\n" + tokenView(text, mixture: mixture, tokenizer: project.tokenizer, layer: layer))
    }
    return 0
  }

  /// Rows of shaded cells, one character pair per cell: darker is a larger share.
  static func heatmap(_ rows: [[Double]], rowNames: [String], columnNames: [String], numbers: Bool)
    -> String
  {
    let shades = [" ", "░", "▒", "▓", "█"]
    let width = max(numbers ? 12 : 6, (columnNames.map(\.count).max() ?? 0) + 2)
    let nameWidth = (rowNames.map(\.count).max() ?? 0) + 2
    var lines = [
      String(repeating: " ", count: nameWidth)
        + columnNames.map { $0.padding(toLength: width, withPad: " ", startingAt: 0) }.joined()
    ]
    for (name, row) in zip(rowNames, rows) {
      var line = name.padding(toLength: nameWidth, withPad: " ", startingAt: 0)
      for value in row {
        let shade = shades[min(4, Int((value * 4).rounded()))]
        var cell = String(repeating: shade, count: 4)
        if numbers { cell += String(format: " %4.0f%%", 100 * value) }
        line += cell.padding(toLength: width, withPad: " ", startingAt: 0)
      }
      lines.append(line)
    }
    lines.append("\nshades: ' ' 0-12%  ░ 13-37%  ▒ 38-62%  ▓ 63-87%  █ 88-100%")
    return lines.joined(separator: "\n")
  }

  /// The same heatmap as an SVG document: one square per cell, labelled with its share.
  static func svg(_ rows: [[Double]], rowNames: [String], columnNames: [String], title: String)
    -> String
  {
    let cell = 64
    let left = 12 + 8 * (rowNames.map(\.count).max() ?? 0)
    let top = 60
    let width = left + cell * columnNames.count + 20
    let height = top + cell * rows.count + 20
    let escaped = Chart.escaped
    var parts = [
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" font-family=\"sans-serif\" font-size=\"12\">",
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
      "<text x=\"10\" y=\"18\" font-size=\"14\">\(escaped(title))</text>",
    ]
    for (column, name) in columnNames.enumerated() {
      parts.append(
        "<text x=\"\(left + column * cell + cell / 2)\" y=\"\(top - 8)\" text-anchor=\"middle\">\(escaped(name))</text>"
      )
    }
    for (row, values) in rows.enumerated() {
      let y = top + row * cell
      parts.append(
        "<text x=\"\(left - 6)\" y=\"\(y + cell / 2 + 4)\" text-anchor=\"end\">\(escaped(rowNames[row]))</text>"
      )
      for (column, value) in values.enumerated() {
        let shade = Int(255 - 200 * value)
        parts.append(
          "<rect x=\"\(left + column * cell)\" y=\"\(y)\" width=\"\(cell - 2)\" height=\"\(cell - 2)\" fill=\"rgb(\(shade),\(shade),255)\"/>"
            + "<text x=\"\(left + column * cell + cell / 2 - 1)\" y=\"\(y + cell / 2 + 4)\" text-anchor=\"middle\">\(String(format: "%.0f%%", 100 * value))</text>"
        )
      }
    }
    parts.append("</svg>")
    return parts.joined(separator: "\n") + "\n"
  }

  /// For each token of `text` (with `<bos>` and `<sep>`), the letters of the experts it chose
  /// at each site of `layer` (or the first site of every layer), first choice first.
  static func tokenView(_ text: String, mixture: Mixture, tokenizer: Tokenizer, layer: Int?)
    -> String
  {
    let ids = [Tokenizer.begin] + tokenizer.encode(text) + [Tokenizer.separator]
    let records = mixture.forward(ids, batch: 1, length: ids.count, phase: .inference).routings
    let chosen = zip(mixture.sites, records).filter { site, _ in
      layer.map { site.path.contains("layers.\($0).") } ?? site.path.hasSuffix("q_proj")
    }
    let letters = mixture.expertNames.indices.map { String(UnicodeScalar(UInt8(97 + $0 % 26))) }
    let names = chosen.map { site, _ in
      site.path.replacingOccurrences(of: "model.layers.", with: "L").replacingOccurrences(
        of: ".self_attn.", with: "."
      )
      .replacingOccurrences(of: ".mlp.", with: ".")
    }
    let tokenWidth = max(8, ids.map { tokenizer.decode([$0]).count }.max() ?? 0) + 2
    let columnWidth = max(6, (names.map(\.count).max() ?? 0) + 1)
    var lines = [
      "experts chosen by each token (first choice first): "
        + zip(letters, mixture.expertNames).map { "\($0) = \($1)" }.joined(separator: ", "), "",
      "token".padding(toLength: tokenWidth, withPad: " ", startingAt: 0)
        + names.map { $0.padding(toLength: columnWidth, withPad: " ", startingAt: 0) }.joined(),
    ]
    for (position, id) in ids.enumerated() {
      var line = tokenizer.decode([id]).padding(toLength: tokenWidth, withPad: " ", startingAt: 0)
      for (_, record) in chosen {
        let k = record.routing.k
        let picks = (0..<k).map { letters[record.routing.selected[position * k + $0]] }.joined()
        line += picks.padding(toLength: columnWidth, withPad: " ", startingAt: 0)
      }
      lines.append(line)
    }
    return lines.joined(separator: "\n")
  }
}
