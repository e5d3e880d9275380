/// A plain-text table with a header row and aligned columns.
public struct Table {
  let header: [String]
  var rows: [[String]] = []
  /// Which columns are right-aligned (numbers).
  var rightAligned: Set<Int> = []

  /// An empty table under `header`.
  public init(_ header: [String], rightAligned: Set<Int> = []) {
    self.header = header
    self.rightAligned = rightAligned
  }

  /// Appends a row.
  public mutating func add(_ row: [String]) { rows.append(row) }

  /// The table as lines of text.
  public var rendered: String {
    let all = [header] + rows
    let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
    func line(_ row: [String]) -> String {
      row.indices.map { column in
        let cell = row[column]
        let pad = String(repeating: " ", count: widths[column] - cell.count)
        return rightAligned.contains(column) ? pad + cell : cell + pad
      }.joined(separator: "  ").trimmingSuffix()
    }
    let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")
    return ([line(header), rule] + rows.map(line)).joined(separator: "\n")
  }
}

extension String {
  /// This string without trailing spaces.
  func trimmingSuffix() -> String {
    var result = self
    while result.last == " " { result.removeLast() }
    return result
  }
}
