/// The `k` largest elements of each row, largest first, and their column indices.
/// Equal values are ordered by column, so ties go to the lower index.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func topKRows<T: KernelScalar>(
  _ x: UnsafePointer<T>, rows: Int, columns: Int, k: Int,
  values: UnsafeMutablePointer<T>, indices: UnsafeMutablePointer<Int>
) { topKLoop(x, rows, columns, k, values, indices) }

private func topKLoop<T: KernelScalar>(
  _ x: UnsafePointer<T>, _ rows: Int, _ columns: Int, _ k: Int,
  _ values: UnsafeMutablePointer<T>, _ indices: UnsafeMutablePointer<Int>
) {
  precondition(k >= 0 && k <= columns, "top-\(k) of \(columns) columns")
  guard k > 0 else { return }
  // Cut into tasks, a router's 2,048 rows of 6 no longer run on one thread: the bench
  // mixture's 16 `renormalizedTopK` took 0.92 to 1.02 ms of its step in seven tasks, 1.25 in
  // one (AMD EPYC Zen 3, 2 threads, in turns); `forEachEvenChunk` now makes them eight.
  forEachEvenChunk(rows, grain: rowsPerChunk(columns * k, cost: 8)) { range in
    if k == 2 {
      topTwo(x, range, columns, values, indices)
      return
    }
    for r in range {
      let row = x + r * columns
      let value = values + r * k
      let index = indices + r * k
      // Insertion into a sorted list of the best `k` so far. A later column enters only if
      // strictly greater, which keeps the lower index first among equals.
      var filled = 0
      for c in 0..<columns {
        let v = row[c]
        if filled == k && !(v > value[k - 1]) { continue }
        var slot = Swift.min(filled, k - 1)
        while slot > 0 && v > value[slot - 1] {
          value[slot] = value[slot - 1]
          index[slot] = index[slot - 1]
          slot -= 1
        }
        value[slot] = v
        index[slot] = c
        filled = Swift.min(filled + 1, k)
      }
    }
  }
}

/// The insertion above for k = 2, the routers' default: the two best held in variables and
/// chosen by comparisons without branches. Which of a router's six probabilities beats the
/// best two so far cannot be predicted, and in the insertion each such branch cost a
/// misprediction (75 µs for 2,048 rows of 6; 7% of the main thread's samples outside the
/// pool's jobs in a mixture step, AMD EPYC Zen 4). Same results, ties and NaNs included: a later
/// column enters only if strictly greater.
private func topTwo<T: KernelScalar>(
  _ x: UnsafePointer<T>, _ range: Range<Int>, _ columns: Int,
  _ values: UnsafeMutablePointer<T>, _ indices: UnsafeMutablePointer<Int>
) {
  for r in range {
    let row = x + r * columns
    let secondFirst = row[1] > row[0]
    var (first, second) = secondFirst ? (row[1], row[0]) : (row[0], row[1])
    var (firstIndex, secondIndex) = secondFirst ? (1, 0) : (0, 1)
    for c in 2..<columns {
      let v = row[c]
      let aboveSecond = v > second
      let aboveFirst = aboveSecond && v > first
      second = aboveFirst ? first : (aboveSecond ? v : second)
      secondIndex = aboveFirst ? firstIndex : (aboveSecond ? c : secondIndex)
      first = aboveFirst ? v : first
      firstIndex = aboveFirst ? c : firstIndex
    }
    (values[2 * r], values[2 * r + 1]) = (first, second)
    (indices[2 * r], indices[2 * r + 1]) = (firstIndex, secondIndex)
  }
}

/// Each row's entries at its `k` columns `indices` (row-major, from `topKRows`) divided by
/// their sum, every other entry zero: `y = (M ⊙ x) / Σ (M ⊙ x)` row by row, with M the 0/1
/// mask of the columns. The bits of those three operations: the masked row is summed by
/// `contiguousSum` as the row sum sums it, and each entry divided by the sum.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func renormalizeTopKRows<T: KernelScalar>(
  _ x: UnsafePointer<T>, rows: Int, columns: Int, k: Int, indices: UnsafePointer<Int>,
  into y: UnsafeMutablePointer<T>
) {
  // A division or two a number: a router's 2,048 rows of 6 in four tasks, not one (the
  // bench mixture's 16 `renormalizedTopK` took 1.2 ms of its step so, 1.5 in one task; AMD
  // EPYC Zen 3, 2 threads, `--profile`).
  forEachEvenChunk(rows, grain: rowsPerChunk(columns, cost: 8)) { range in
    if columns < 8 {
      renormalizeShortRows(x, range, rows, columns, k, indices, y)
      return
    }
    Scratch.with(T.self, count: columns) { mask in
      for r in range {
        let (xRow, yRow) = (x + r * columns, y + r * columns)
        mask.update(repeating: 0, count: columns)
        for slot in 0..<k { mask[indices[r * k + slot]] = 1 }
        // M ⊙ x (a dropped negative x gives −0, as the product does), then the division.
        for c in 0..<columns { yRow[c] = xRow[c] * mask[c] }
        let total = contiguousSum(yRow, columns)
        for c in 0..<columns { yRow[c] = yRow[c] / total }
      }
    }
  }
}

/// `renormalizeTopKRows` for rows of fewer than eight numbers (a router's, one per expert),
/// each row in one vector: the mask a vector of zeros and ones, the sum taken number by
/// number as `contiguousSum` takes so short a run (from zero, in order), and the divisions
/// one vector division (each row's `k` columns distinct, as `topKRows` gives them). The
/// same operations on every number, so the same bits. A router's 2,048 rows of 6 took 31 µs
/// on one thread number by number, 4.9 so; in the bench mixture's AVX2 step the 16
/// `renormalizedTopK` take 0.32 to 0.36 ms against 0.53 to 0.56 (`--profile`), and the step
/// 0.24 ms less on average over 46 rounds in turns, 26 faster: at the edge of the noise
/// (AMD EPYC Zen 5, 2 threads). The mask is a sum of one-hot vectors: built by comparing
/// the lanes with each kept column, the compiler set it lane by lane through memory, and
/// the rows took 135 µs.
@inline(__always)
private func renormalizeShortRows<T: KernelScalar>(
  _ x: UnsafePointer<T>, _ range: Range<Int>, _ rows: Int, _ columns: Int, _ k: Int,
  _ indices: UnsafePointer<Int>, _ y: UnsafeMutablePointer<T>
) {
  // Lane c of row c is one, the others zero: a row's kept columns are the sum of theirs.
  var oneHot = [SIMD8<T>](repeating: SIMD8(), count: 8)
  for c in 0..<8 { oneHot[c][c] = 1 }
  for r in range {
    let (xRow, yRow) = (x + r * columns, y + r * columns)
    // All eight lanes read when they lie in the array, else the row's numbers alone.
    var row = SIMD8<T>()
    if r * columns + 8 <= rows * columns {
      row = UnsafeRawPointer(xRow).loadUnaligned(as: SIMD8<T>.self)
    } else {
      for c in 0..<columns { row[c] = xRow[c] }
    }
    var ones = SIMD8<T>()
    for slot in 0..<k { ones += oneHot[indices[r * k + slot]] }
    let masked = row * ones
    var total: T = 0
    for c in 0..<columns { total += masked[c] }
    let renormalized = masked / SIMD8(repeating: total)
    // Eight lanes written when those past the row fall in the next rows of this range,
    // which are written after; else the row's numbers alone.
    if r * columns + 8 <= range.upperBound * columns {
      UnsafeMutableRawPointer(yRow).storeBytes(of: renormalized, as: SIMD8<T>.self)
    } else {
      for c in 0..<columns { yRow[c] = renormalized[c] }
    }
  }
}

/// Backward of `renormalizeTopKRows`, given its output `y`, the gradient `g` of `y` and the
/// same `indices`: with s the sum of the kept entries (recomputed from x), `dx = M ⊙ (g / s
/// + Σ_c −(g ⊙ y)_c / s)` row by row, in the order of the primitive operations' backward
/// passes (division, row sum, mask), so with their bits.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func renormalizeTopKRowsBackward<T: KernelScalar>(
  _ x: UnsafePointer<T>, output y: UnsafePointer<T>, gradient g: UnsafePointer<T>, rows: Int,
  columns: Int, k: Int, indices: UnsafePointer<Int>, into dx: UnsafeMutablePointer<T>
) {
  forEachEvenChunk(rows, grain: rowsPerChunk(columns, cost: 8)) { range in
    Scratch.with(T.self, count: columns) { mask in
      for r in range {
        let (xRow, yRow, gRow, dxRow) = (
          x + r * columns, y + r * columns, g + r * columns, dx + r * columns
        )
        // The mask, and s, as the forward pass computed them (dx as scratch).
        mask.update(repeating: 0, count: columns)
        for slot in 0..<k { mask[indices[r * k + slot]] = 1 }
        for c in 0..<columns { dxRow[c] = xRow[c] * mask[c] }
        let total = contiguousSum(dxRow, columns)
        // The sum's share: Σ_c −(g_c · y_c) / s.
        for c in 0..<columns { dxRow[c] = -(gRow[c] * yRow[c]) / total }
        let shared = contiguousSum(dxRow, columns)
        for c in 0..<columns { dxRow[c] = (gRow[c] / total + shared) * mask[c] }
      }
    }
  }
}

/// Copies rows of `table` (each `rowLength` long) into `out`: `out[i] = table[indices[i]]`.
/// This is an embedding lookup.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func gatherRows<T: KernelScalar>(
  _ table: UnsafePointer<T>, rowLength: Int, indices: UnsafePointer<Int>, count: Int,
  into out: UnsafeMutablePointer<T>
) { gatherLoop(table, rowLength, indices, count, out) }

/// Adds each row of `rows` into `table` at its index: `table[indices[i]] += rows[i]`, in
/// order of `i`. This is the backward pass of `gatherRows`; an index that appears twice
/// receives both rows.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func scatterAddRows<T: KernelScalar>(
  _ rows: UnsafePointer<T>, rowLength: Int, indices: UnsafePointer<Int>, count: Int,
  into table: UnsafeMutablePointer<T>
) { scatterAddLoop(rows, rowLength, indices, count, table) }

private func gatherLoop<T: KernelScalar>(
  _ table: UnsafePointer<T>, _ rowLength: Int, _ indices: UnsafePointer<Int>, _ count: Int,
  _ out: UnsafeMutablePointer<T>
) {
  forEachChunk(count, grain: rowsPerChunk(rowLength)) { range in
    for i in range {
      (out + i * rowLength).update(from: table + indices[i] * rowLength, count: rowLength)
    }
  }
}

private func scatterAddLoop<T: KernelScalar>(
  _ rows: UnsafePointer<T>, _ rowLength: Int, _ indices: UnsafePointer<Int>, _ count: Int,
  _ table: UnsafeMutablePointer<T>
) {
  // Threads split the columns, never the rows: two rows with the same index are then
  // always added by one thread, in order.
  let columnsPerChunk = max(16, elementwiseGrain / max(1, count))
  forEachChunk(rowLength, grain: columnsPerChunk) { columns in
    for i in 0..<count {
      let source = rows + i * rowLength
      let destination = table + indices[i] * rowLength
      for c in columns { destination[c] += source[c] }
    }
  }
}
