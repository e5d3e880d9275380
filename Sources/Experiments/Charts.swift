import Foundation

/// One named series of a chart: its values, in the order of the chart's categories (bars)
/// or its x values (lines).
struct ChartSeries {
  var name: String
  var values: [Double]
}

/// Small SVG charts for the report: grouped bars and lines, each with a title, labelled
/// axes and a legend, and nothing a browser needs a script for.
public enum Chart {
  static let width = 720.0, height = 400.0
  static let plot = (left: 70.0, right: 190.0, top: 50.0, bottom: 70.0)
  static let colors = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#9c755f",
  ]

  /// Grouped bars of shares: one group per category, one bar per series, on a 0-100% axis.
  static func bars(title: String, categories: [String], series: [ChartSeries], yLabel: String)
    -> String
  {
    var svg = frame(title: title, xLabel: "", yLabel: yLabel)
    svg += yAxis(from: 0, to: 1, percent: true)
    let area = plotArea
    let groupWidth = area.width / Double(max(1, categories.count))
    let barWidth = groupWidth * 0.8 / Double(max(1, series.count))
    for (c, category) in categories.enumerated() {
      let left = area.x + Double(c) * groupWidth + groupWidth * 0.1
      for (s, item) in series.enumerated() where c < item.values.count {
        let barHeight = area.height * min(max(item.values[c], 0), 1)
        svg += rect(
          x: left + Double(s) * barWidth, y: area.y + area.height - barHeight, width: barWidth,
          height: barHeight, color: colors[s % colors.count],
          tooltip: "\(item.name), \(category): \(label(item.values[c], percent: true))")
      }
      svg += text(
        category, x: area.x + (Double(c) + 0.5) * groupWidth, y: area.y + area.height + 18,
        anchor: "middle", size: 11)
    }
    svg += legend(series.map(\.name))
    return svg + "</svg>\n"
  }

  /// Lines over numeric x values (`logX` spaces them by their logarithm), on a y axis from
  /// the lowest value to the highest, with a marker at every point unless `markers` is false.
  static func lines(
    title: String, x: [Double], series: [ChartSeries], xLabel: String, yLabel: String,
    logX: Bool = false, percent: Bool = true, markers: Bool = true
  ) -> String {
    let values = series.flatMap(\.values).filter(\.isFinite)
    var range = (values.min() ?? 0)...(values.max() ?? 1)
    if range.upperBound - range.lowerBound < 1e-9 {
      range = (range.lowerBound - 0.5)...(range.upperBound + 0.5)
    }
    var svg = frame(title: title, xLabel: xLabel, yLabel: yLabel)
    svg += yAxis(from: range.lowerBound, to: range.upperBound, percent: percent)
    let area = plotArea
    let position = { (value: Double) in logX ? log(value) : value }
    let (low, high) = (position(x.first ?? 0), position(x.last ?? 1))
    func px(_ value: Double) -> Double {
      area.x + area.width * (position(value) - low) / max(1e-12, high - low)
    }
    func py(_ value: Double) -> Double {
      area.y + area.height
        * (1 - (value - range.lowerBound) / (range.upperBound - range.lowerBound))
    }
    let ticks = x.count <= 12 ? x : stride(from: 0, to: x.count, by: x.count / 6).map { x[$0] }
    for tick in ticks {
      svg += text(
        tick.rounded() == tick ? "\(Int(tick))" : String(format: "%.2g", tick), x: px(tick),
        y: area.y + area.height + 18, anchor: "middle", size: 11)
    }
    for (s, item) in series.enumerated() {
      let color = colors[s % colors.count]
      let points = zip(x, item.values).filter { $0.1.isFinite }
      let path = points.map { String(format: "%.1f,%.1f", px($0.0), py($0.1)) }
      svg +=
        "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(path.joined(separator: " "))\"/>\n"
      if markers {
        for (xValue, yValue) in points {
          svg += String(
            format:
              "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%@\"><title>%@</title></circle>\n",
            px(xValue), py(yValue), color,
            escaped("\(item.name) at \(xValue): \(label(yValue, percent: percent))"))
        }
      }
    }
    svg += legend(series.map(\.name))
    return svg + "</svg>\n"
  }

  // MARK: Pieces

  static var plotArea: (x: Double, y: Double, width: Double, height: Double) {
    (
      plot.left, plot.top, width - plot.left - plot.right, height - plot.top - plot.bottom
    )
  }

  static func frame(title: String, xLabel: String, yLabel: String) -> String {
    let area = plotArea
    var svg =
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"Helvetica, Arial, sans-serif\">\n"
    svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    svg += text(title, x: width / 2, y: 26, anchor: "middle", size: 16, bold: true)
    svg += text(
      xLabel, x: area.x + area.width / 2, y: height - 22, anchor: "middle", size: 13)
    svg +=
      "<text transform=\"translate(18,\(area.y + area.height / 2)) rotate(-90)\" text-anchor=\"middle\" font-size=\"13\">\(escaped(yLabel))</text>\n"
    svg += String(
      format:
        "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n",
      area.x, area.y, area.width, area.height)
    return svg
  }

  static func yAxis(from low: Double, to high: Double, percent: Bool) -> String {
    let area = plotArea
    var svg = ""
    for index in 0...5 {
      let value = low + (high - low) * Double(index) / 5
      let y = area.y + area.height * (1 - Double(index) / 5)
      svg += String(
        format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
        area.x, y, area.x + area.width, y)
      svg += text(label(value, percent: percent), x: area.x - 6, y: y + 4, anchor: "end", size: 11)
    }
    return svg
  }

  static func legend(_ names: [String]) -> String {
    let x = width - plot.right + 14
    var svg = ""
    for (index, name) in names.enumerated() {
      let y = plot.top + 8 + Double(index) * 20
      svg += rect(x: x, y: y - 9, width: 12, height: 12, color: colors[index % colors.count])
      svg += text(name, x: x + 18, y: y + 2, anchor: "start", size: 12)
    }
    return svg
  }

  static func rect(
    x: Double, y: Double, width: Double, height: Double, color: String, tooltip: String? = nil
  ) -> String {
    String(
      format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%@\">", x, y,
      width, height, color) + (tooltip.map { "<title>\(escaped($0))</title>" } ?? "") + "</rect>\n"
  }

  static func text(
    _ string: String, x: Double, y: Double, anchor: String, size: Int, bold: Bool = false
  ) -> String {
    String(
      format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%@\" font-size=\"%d\"%@>", x, y, anchor,
      size, bold ? " font-weight=\"bold\"" : "") + escaped(string) + "</text>\n"
  }

  static func label(_ value: Double, percent: Bool) -> String {
    percent ? String(format: "%.0f%%", 100 * value) : String(format: "%.3g", value)
  }

  /// `string` safe inside SVG text and attribute values (also used by `tinymixer route`).
  public static func escaped(_ string: String) -> String {
    string.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
      .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
  }
}
