/// A walk over a contiguous output of some shape, reading up to three operands through
/// their own strides (a stride of 0 repeats an operand along that axis: broadcasting).
///
/// Adjacent axes that every operand reads contiguously are merged first, so adding two
/// `[2048, 128]` tensors is one run of 262,144 elements, and adding a `[128]` bias to them
/// is 2,048 runs of 128. The runs are visited in chunks whose boundaries depend only on the
/// shape, on all threads.
struct StridedWalk {
  /// Axis lengths after merging; the last axis is walked by the inner loop.
  private(set) var shape: [Int]
  /// Per operand, its stride along each merged axis.
  private(set) var strides: [[Int]]

  init(shape: [Int], strides: [[Int]]) {
    precondition(strides.count <= 3 && strides.allSatisfy { $0.count == shape.count })
    var mergedShape: [Int] = []
    var mergedStrides: [[Int]] = strides.map { _ in [] }
    for axis in shape.indices where shape[axis] != 1 {
      let canMerge =
        !mergedShape.isEmpty
        && strides.indices.allSatisfy { operand in
          mergedStrides[operand].last! == strides[operand][axis] * shape[axis]
        }
      if canMerge {
        mergedShape[mergedShape.count - 1] *= shape[axis]
        for operand in strides.indices {
          mergedStrides[operand][mergedStrides[operand].count - 1] = strides[operand][axis]
        }
      } else {
        mergedShape.append(shape[axis])
        for operand in strides.indices { mergedStrides[operand].append(strides[operand][axis]) }
      }
    }
    if mergedShape.isEmpty {
      mergedShape = [1]
      mergedStrides = strides.map { _ in [0] }
    }
    self.shape = mergedShape
    self.strides = mergedStrides
  }

  /// Calls `body(outputStart, offsets, length, innerStrides)` for runs of the output:
  /// `length` output elements from `outputStart`, where operand `i` starts at `offsets.i`
  /// and steps by `innerStrides.i`.
  func forEachRun(
    _ body: (Int, (Int, Int, Int), Int, (Int, Int, Int)) -> Void
  ) {
    let inner = shape.last!
    let rows = shape.dropLast().reduce(1, *)
    func strideOf(_ operand: Int, _ axis: Int) -> Int {
      operand < strides.count ? strides[operand][axis] : 0
    }
    let last = shape.count - 1
    let innerStrides = (strideOf(0, last), strideOf(1, last), strideOf(2, last))
    // Long rows are cut into pieces; short rows are grouped, so a chunk holds about
    // `elementwiseGrain` elements.
    let piecesPerRow = max(1, inner / elementwiseGrain)
    let pieceLength = (inner + piecesPerRow - 1) / piecesPerRow
    let units = rows * piecesPerRow
    forEachChunk(units, grain: piecesPerRow > 1 ? 1 : rowsPerChunk(inner)) { range in
      for unit in range {
        let row = unit / piecesPerRow
        let piece = unit % piecesPerRow
        // The row's position along each outer axis, last axis fastest.
        var remainder = row
        var offsets = (0, 0, 0)
        for axis in stride(from: shape.count - 2, through: 0, by: -1) {
          let index = remainder % shape[axis]
          remainder /= shape[axis]
          offsets.0 += index * strideOf(0, axis)
          offsets.1 += index * strideOf(1, axis)
          offsets.2 += index * strideOf(2, axis)
        }
        let start = piece * pieceLength
        let length = min(pieceLength, inner - start)
        offsets.0 += start * innerStrides.0
        offsets.1 += start * innerStrides.1
        offsets.2 += start * innerStrides.2
        body(row * inner + start, offsets, length, innerStrides)
      }
    }
  }
}
