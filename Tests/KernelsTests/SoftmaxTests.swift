import Testing

@testable import Kernels

/// Rows narrower than a vector are exponentiated a block of rows at a time; each must get
/// the bits it gets alone (one row per call takes the row-at-a-time path), forward and
/// backward, softmax and log-softmax, whole blocks and a short last one.
@Test(arguments: [1, 2, 6, 15, 16])
func narrowRowsGiveTheBitsOfOneRowAtATime(columns: Int) {
  let rows = 3 * rowBlock(columns) + 5
  let count = rows * columns
  let x: [Float] = fill(count, seed: 11).map { $0 * 30 }
  let g: [Float] = fill(count, seed: 12)
  for log in [false, true] {
    /// The forward over `rows` rows from row `first`, written into `y`.
    func forward(_ y: inout [Float], first: Int, rows: Int) {
      let offset = first * columns
      x.withUnsafeBufferPointer { x in
        y.withUnsafeMutableBufferPointer { y in
          let (xs, ys) = (x.baseAddress! + offset, y.baseAddress! + offset)
          log
            ? logSoftmaxRows(xs, into: ys, rows: rows, columns: columns)
            : softmaxRows(xs, into: ys, rows: rows, columns: columns)
        }
      }
    }
    /// The backward, given the forward's output `y`, over `rows` rows from row `first`.
    func backward(_ y: [Float], _ dx: inout [Float], first: Int, rows: Int) {
      let offset = first * columns
      y.withUnsafeBufferPointer { y in
        g.withUnsafeBufferPointer { g in
          dx.withUnsafeMutableBufferPointer { dx in
            let (ys, gs, dxs) = (
              y.baseAddress! + offset, g.baseAddress! + offset, dx.baseAddress! + offset
            )
            log
              ? logSoftmaxRowsBackward(ys, gradient: gs, into: dxs, rows: rows, columns: columns)
              : softmaxRowsBackward(ys, gradient: gs, into: dxs, rows: rows, columns: columns)
          }
        }
      }
    }
    var together = [Float](repeating: 0, count: count)
    var alone = together
    forward(&together, first: 0, rows: rows)
    for r in 0..<rows { forward(&alone, first: r, rows: 1) }
    #expect(sameBits(together, alone), "forward, log \(log)")
    var dTogether = [Float](repeating: 0, count: count)
    var dAlone = dTogether
    backward(together, &dTogether, first: 0, rows: rows)
    for r in 0..<rows { backward(together, &dAlone, first: r, rows: 1) }
    #expect(sameBits(dTogether, dAlone), "backward, log \(log)")
  }
}

/// `contiguousMax` finds eight at a time what the plain loop finds: the first element no
/// later one is greater than, bit for bit. Runs of every length to 40, then the cases where
/// equal-comparing numbers differ: −0 and +0 in either order and in different lanes, and
/// NaN first, later, in every lane, or ahead of the largest in its lane.
@Test func largestOfARunIsTheLoopsFirstLargest() {
  func loop(_ x: [Float]) -> Float {
    var best = x[0]
    for value in x.dropFirst() where value > best { best = value }
    return best
  }
  func vector(_ x: [Float]) -> Float {
    x.withUnsafeBufferPointer { contiguousMax($0.baseAddress!, $0.count) }
  }
  var runs: [[Float]] = (1...40).map { fill($0, seed: 20 + UInt64($0)) }
  for (first, later) in [(Float(-0.0), Float(0)), (Float(0), Float(-0.0))] {
    for (i, j) in [(3, 9), (9, 3), (0, 17), (17, 0), (5, 21)] {
      var x = [Float](repeating: -1, count: 24)
      (x[i], x[j]) = (first, later)
      runs.append(x)
    }
  }
  for position in [0, 4, 13, 23] {
    var x: [Float] = fill(24, seed: 40)
    x[position] = .nan
    runs.append(x)
  }
  // A NaN among the first eight, and the run's largest later in the same lane.
  var hidden: [Float] = fill(24, seed: 41)
  (hidden[4], hidden[12]) = (.nan, 10)
  runs.append(hidden)
  runs.append([Float](repeating: .nan, count: 24))
  for x in runs {
    #expect(loop(x).bitPattern == vector(x).bitPattern, "\(x)")
  }
}
