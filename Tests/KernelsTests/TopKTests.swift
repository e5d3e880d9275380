import Testing

@testable import Kernels

/// The top-2 path (`topTwo`) picks what sorting each row by value, largest first and ties
/// by column, picks first: on many ties (values from a set of three), for 2 to 7 columns.
@Test(arguments: [2, 3, 6, 7])
func topTwoIsTheFirstTwoOfAStableSort(columns: Int) {
  let rows = 500
  var generator: UInt64 = 7
  let x: [Float] = (0..<rows * columns).map { _ in
    generator = generator &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
    return Float((generator >> 33) % 3) / 4
  }
  var values = [Float](repeating: 0, count: 2 * rows)
  var indices = [Int](repeating: 0, count: 2 * rows)
  topKRows(x, rows: rows, columns: columns, k: 2, values: &values, indices: &indices)
  for r in 0..<rows {
    let row = Array(x[r * columns..<(r + 1) * columns])
    let order = row.indices.sorted { row[$0] > row[$1] || (row[$0] == row[$1] && $0 < $1) }
    #expect(Array(indices[2 * r..<2 * r + 2]) == Array(order.prefix(2)), "row \(row)")
    #expect(Array(values[2 * r..<2 * r + 2]) == order.prefix(2).map { row[$0] })
  }
}

/// With a NaN, the top-2 path keeps the insertion's rule (a later column enters only if
/// greater than the second best): worked by hand from it.
@Test func topTwoTreatsNaNAsTheInsertionDoes() {
  let nan = Float.nan
  let cases: [([Float], [Int])] = [
    ([1, nan, 2, 3], [0, 1]),  // NaN second: nothing is greater, nothing enters
    ([nan, 1, 2], [0, 2]),  // NaN first: 2 beats 1, not NaN
    ([2, 1, nan, 3], [3, 0]),  // a NaN in a later column never enters
  ]
  for (row, expected) in cases {
    var values = [Float](repeating: 0, count: 2)
    var indices = [Int](repeating: 0, count: 2)
    topKRows(row, rows: 1, columns: row.count, k: 2, values: &values, indices: &indices)
    #expect(indices == expected, "row \(row)")
  }
}

/// Renormalising rows shorter than eight, a row to a vector, writes whole vectors only where
/// the numbers past the row are rows the same task writes after: nothing past the last row
/// changes, and every row holds its own numbers, for 1 to 7 columns and 1 to 9 rows, on a
/// buffer with eight guard numbers after it.
@Test func renormalizingShortRowsWritesNoNumberPastItsRows() {
  let guardValue: Float = -12345
  for columns in 1...7 {
    for rows in 1...9 {
      let k = min(2, columns)
      let x: [Float] = (0..<rows * columns).map { Float($0 % 5 + 1) }
      let indices = (0..<rows).flatMap { r in (0..<k).map { (r + $0) % columns } }
      var y = [Float](repeating: guardValue, count: rows * columns + 8)
      renormalizeTopKRows(x, rows: rows, columns: columns, k: k, indices: indices, into: &y)
      #expect(y[(rows * columns)...].allSatisfy { $0 == guardValue }, "\(rows) × \(columns)")
      for r in 0..<rows {
        let kept = indices[r * k..<r * k + k]
        let total = kept.reduce(Float(0)) { $0 + x[r * columns + $1] }
        for c in 0..<columns {
          let expected = kept.contains(c) ? x[r * columns + c] / total : 0
          #expect(y[r * columns + c] == expected, "row \(r) column \(c) of \(rows) × \(columns)")
        }
      }
    }
  }
}
