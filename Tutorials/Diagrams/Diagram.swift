import Foundation

/// A small SVG drawing of boxes, arrows and text, for the lessons' pictures. Each lesson
/// draws its picture from the real objects it shows (a recorded tape, the matmul's tile, a
/// routed site, a mixture), so a renamed part cannot leave a stale picture: a test draws
/// it again and compares it with the committed file.
public struct Diagram {
  /// The drawing's size in pixels.
  public let width: Double, height: Double
  private var body = ""

  /// Fills for boxes, by what they hold.
  public enum Fill: String, Sendable {
    /// Something trained (a gradient is computed for it).
    case trained = "#f9d9a8"
    /// Something frozen or given (no gradient).
    case frozen = "#dde5f0"
    /// A computed value.
    case value = "#ffffff"
    /// A router, or what it decides.
    case router = "#cfe8cf"
  }

  /// An empty drawing with `title` across its top.
  public init(width: Double, height: Double, title: String) {
    (self.width, self.height) = (width, height)
    text(title, x: width / 2, y: 24, size: 15, bold: true)
  }

  /// Text centred at (x, y) unless `anchor` says `start` or `end`.
  public mutating func text(
    _ string: String, x: Double, y: Double, size: Double = 12, anchor: String = "middle",
    bold: Bool = false, color: String = "#222"
  ) {
    body +=
      "<text x=\"\(number(x))\" y=\"\(number(y))\" font-family=\"sans-serif\" font-size=\"\(number(size))\" text-anchor=\"\(anchor)\" fill=\"\(color)\"\(bold ? " font-weight=\"bold\"" : "")>\(escaped(string))</text>\n"
  }

  /// A box with its top-left corner at (x, y) and one or more centred lines of text.
  public mutating func box(
    x: Double, y: Double, width: Double, height: Double, lines: [String], fill: Fill = .value,
    dashed: Bool = false
  ) {
    body +=
      "<rect x=\"\(number(x))\" y=\"\(number(y))\" width=\"\(number(width))\" height=\"\(number(height))\" rx=\"4\" fill=\"\(fill.rawValue)\" stroke=\"#444\"\(dashed ? " stroke-dasharray=\"4 3\"" : "")/>\n"
    let top = y + height / 2 - Double(lines.count - 1) * 7 + 4
    for (index, line) in lines.enumerated() {
      text(line, x: x + width / 2, y: top + Double(index) * 14, size: 11)
    }
  }

  /// An arrow from one point to another, with an optional label beside its middle.
  public mutating func arrow(
    from start: (Double, Double), to end: (Double, Double), label: String? = nil,
    color: String = "#444", dashed: Bool = false
  ) {
    body +=
      "<line x1=\"\(number(start.0))\" y1=\"\(number(start.1))\" x2=\"\(number(end.0))\" y2=\"\(number(end.1))\" stroke=\"\(color)\" stroke-width=\"1.4\" marker-end=\"url(#head)\"\(dashed ? " stroke-dasharray=\"5 3\"" : "")/>\n"
    if let label {
      // Above a level arrow, beside a slanted or upright one.
      let level = abs(end.1 - start.1) < abs(end.0 - start.0) / 4
      text(
        label, x: (start.0 + end.0) / 2 + (level ? 0 : 4), y: (start.1 + end.1) / 2 - 5,
        size: 10, anchor: level ? "middle" : "start", color: color)
    }
  }

  /// The whole SVG document.
  public var svg: String {
    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(number(width))\" height=\"\(number(height))\" viewBox=\"0 0 \(number(width)) \(number(height))\">\n"
      + "<defs><marker id=\"head\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#444\"/></marker></defs>\n"
      + "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n" + body + "</svg>\n"
  }

  /// Writes the drawing to the file named by `--diagram FILE` in `arguments`, if there is
  /// one, and says whether it did.
  public func writeIfAsked(_ arguments: [String] = CommandLine.arguments) throws -> Bool {
    guard let flag = arguments.firstIndex(of: "--diagram"), flag + 1 < arguments.count else {
      return false
    }
    let file = URL(fileURLWithPath: arguments[flag + 1])
    let temporary = file.deletingLastPathComponent().appendingPathComponent(
      ".\(file.lastPathComponent).partial")
    try Data(svg.utf8).write(to: temporary)
    guard rename(temporary.path, file.path) == 0 else {
      throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: file.path])
    }
    return true
  }

  /// `12` or `12.5`: the shortest form, so the file is the same on every platform.
  private func number(_ value: Double) -> String {
    value == value.rounded() ? String(Int(value)) : String(format: "%.1f", value)
  }

  private func escaped(_ string: String) -> String {
    string.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
      .replacingOccurrences(of: ">", with: "&gt;")
  }
}
