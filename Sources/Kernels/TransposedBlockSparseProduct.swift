/// A product `C = Aᵀ · B` whose A is zero in most of each row's blocks of columns, computed
/// without those zeros: row p of C (a column of A, in block e) is the chain over the rows of
/// A that `BlockRows` lists for block e, and over no others.
///
/// The gradients of the experts' stacked factors under hard top-k routing are such products,
/// over the tokens: `dA_all = dhᵀ · x`, and `dB_all = gᵀ · weighted` written as
/// `(weightedᵀ · g)ᵀ`. In both the sparse operand is `[tokens, Σ rank]`, each token's row zero
/// but in the k experts it selected (two of six in the bench mixture), so each expert's rows
/// of C are sums over the tokens that selected it: a third of the terms. Where
/// `BlockSparseProduct` skips a row's zero blocks over a short inner dimension (the ranks),
/// here the inner dimension is the tokens, long, and the routing lists each block's tokens.
///
/// A is `[rows, depth]`, B `[rows, columns]`, both read in place; C is `[depth, columns]`, or
/// `[columns, depth]` with `transposedC`. Each element of C is the chain of fused
/// multiply-adds over A's rows in increasing order from zero, that `matmul` computes for
/// `transposeA`, less the terms of rows not listed, whose numbers of A are zero: `matmul`'s
/// bits (short of a zero's sign, or a NaN that a zero times an infinity or NaN of B would
/// make).
///
/// The bench mixture's training step (`tinymixer bench train-mixer`, 2 threads, AMD EPYC Zen
/// 5), against the dense products, in turns: the AVX2 build's 1.24 ms less on average (eight
/// rounds, seven faster: 53.6 ms against 54.8).
public struct TransposedBlockSparseProduct<T: KernelScalar> {
  let a: UnsafePointer<T>
  let b: UnsafePointer<T>
  let depth: Int
  let columns: Int
  /// A's blocks of columns, and the rows that may hold numbers other than zero in each.
  let blockRows: BlockRows

  /// The product `aᵀ · b` of `a` (`[rows, depth]`, its columns cut into `blockRows.blocks`,
  /// each zero in every row that `blockRows` does not list for it) and `b` (`[rows, columns]`).
  public init(
    a: UnsafePointer<T>, b: UnsafePointer<T>, depth: Int, columns: Int, blockRows: BlockRows
  ) {
    precondition(
      blockRows.blocks.last?.upperBound ?? 0 == depth,
      "blocks \(blockRows.blocks) do not cover 0..<\(depth)")
    (self.a, self.b, self.depth, self.columns, self.blockRows) = (a, b, depth, columns, blockRows)
  }

  /// The dense product of the same A and B, `matmul`'s shape: how `MatmulProfile` names this
  /// product and counts its operations.
  var shape: MatmulShape {
    MatmulShape(m: depth, n: columns, k: blockRows.rowCount, transposeA: true)
  }

  /// Writes C (`[depth, columns]`, or `[columns, depth]` with `transposedC`), on all threads.
  /// Every kernel skips the zeros. On AVX-512 the dense product ran faster on an AMD EPYC
  /// Zen 5 (the bench mixture's step 0.25 ms less, median of ten rounds in turns, nine
  /// faster), but on an Intel Xeon (Emerald Rapids), where the dense tile ran these 32
  /// products at 98 to 117 GFLOP/s, they took 4.9 ms against 7.4 to 7.7 (`bench
  /// train-mixer --profile`) and the step 3.6 ms less (median of 16 rounds in turns, ten
  /// faster).
  @_specialize(where T == Float)
  @_specialize(where T == Double)
  public func run(
    into c: UnsafeMutablePointer<T>, transposedC: Bool = false, kernel: MatmulKernel = .native
  ) {
    let started = MatmulProfile.start()
    switch kernel {
    case .avx512: compute(into: c, transposedC: transposedC, T.Vector512.self)
    case .avx2: compute(into: c, transposedC: transposedC, T.Vector256.self)
    case .neon, .portable: compute(into: c, transposedC: transposedC, T.Vector128.self)
    }
    if let started { MatmulProfile.add(self, started: started) }
  }

  /// `run` with vectors of type `V`.
  @inline(__always)
  func compute<V: SIMD>(into c: UnsafeMutablePointer<T>, transposedC: Bool, _: V.Type)
  where V.Scalar == T {
    let blocks = blockRows.blocks
    let (rows, starts) = blockRows.lists
    rows.withUnsafeBufferPointer { rows in
      // A task: a block's rows of C by 48 of its columns, four rows at a time, so that the
      // second four find B's numbers in cache.
      let slices = (columns + 47) / 48
      parallelFor(blocks.count * slices) { task in
        let (block, slice) = (task / slices, task % slices)
        let listed = starts[block]..<starts[block + 1]
        for first in stride(from: blocks[block].lowerBound, to: blocks[block].upperBound, by: 4) {
          let tile = Tile(
            product: self, tokens: rows.baseAddress! + listed.lowerBound, count: listed.count,
            first: first, last: min(first + 4, blocks[block].upperBound) - 1, c: c,
            transposedC: transposedC, fetchesAhead: first == blocks[block].lowerBound)
          tile.compute(slice * 48..<min(columns, slice * 48 + 48), V.self)
        }
      }
    }
  }
}

/// The blocks of a block-sparse operand's columns, and for each block the rows that may hold
/// numbers other than zero in it: every other row is zero there. For a hard-routed mixture's
/// weighted ranks, each expert's columns and the tokens that selected it: the routing knows
/// them, where finding them in A would read all of it (by the backward pass, out of cache).
public final class BlockRows {
  /// The blocks of columns, which cover the operand's columns in order.
  public let blocks: [Range<Int>]
  /// How many rows the operand has.
  public let rowCount: Int
  /// The blocks each row selects, one row after another.
  let selected: [Int]
  /// How many blocks each row selects.
  let perRow: Int

  /// `blocks`, with the rows that select each: `selected` holds `perRow` distinct blocks for
  /// each row, one row after another (a hard routing's top-k experts of each token).
  public init(blocks: [Range<Int>], selected: [Int], perRow: Int) {
    precondition(
      blocks.first?.lowerBound ?? 0 == 0
        && zip(blocks, blocks.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound },
      "blocks \(blocks) do not cover their columns in order")
    precondition(
      perRow > 0 && selected.count % perRow == 0,
      "\(selected.count) selections of \(perRow) a row")
    (self.blocks, self.selected, self.perRow) = (blocks, selected, perRow)
    rowCount = selected.count / perRow
  }

  /// Every block's rows in increasing order, one block after another, and where each block's
  /// rows start (and the last ends). Listed when first asked for, by the backward pass: a
  /// forward pass alone never asks (building them took 6 µs a site, 0.1 ms of the bench
  /// mixture's step, AMD EPYC Zen 5).
  lazy var lists: (rows: [Int32], starts: [Int]) = {
    // Each block's rows, counted, then written in place.
    var starts = [Int](repeating: 0, count: blocks.count + 1)
    for block in selected {
      precondition(block >= 0 && block < blocks.count, "block \(block) of \(blocks.count)")
      starts[block + 1] += 1
    }
    for block in blocks.indices { starts[block + 1] += starts[block] }
    var ends = Array(starts.dropLast())  // where each block's next row goes
    let rows = [Int32](unsafeUninitializedCapacity: selected.count) { rows, written in
      selected.withUnsafeBufferPointer { selected in
        ends.withUnsafeMutableBufferPointer { ends in
          for row in 0..<rowCount {
            for block in selected[row * perRow..<row * perRow + perRow] {
              // A block selected twice in a row would list the row twice, counted twice.
              precondition(
                ends[block] == starts[block] || rows[ends[block] - 1] < row,
                "row \(row) selects block \(block) twice")
              rows[ends[block]] = Int32(row)
              ends[block] += 1
            }
          }
        }
      }
      written = selected.count
    }
    return (rows, starts)
  }()
}

/// How many tokens ahead a task's first pass over its listed tokens asks for their rows
/// (`prefetchForReading`: A's line of the task's rows, B's lines of its columns).
///
/// The lists skip about two tokens in three, so the hardware's prefetcher does not follow
/// them, and B (the input x of `dA_all = dhᵀ · x`) was written long before, in the forward
/// pass: each row waited on memory. Only the first pass fetches, in a loop of its own; the
/// task's other passes find the rows in cache. In the bench mixture's step (AVX2 build, AMD
/// EPYC Zen 5, 2 threads) the 32 products took 2.26 to 2.37 ms against 2.78 to 2.82
/// (`--profile`, eight and two runs), and the step 0.48 ms less on average (ten rounds in
/// turns, nine faster); 16 ahead, 2.35 to 2.54 ms; 64, 2.26 to 2.36. Alone on two threads
/// (2,048 tokens, top-2 of six blocks of 8, 128 columns; median of 400), with x out of
/// cache: 98 µs against 126 to 134 without; all in cache: 50 against 45 to 47. (An earlier
/// try, 16 ahead in every pass with the test inside the loop, made the step 0.73 ms slower.)
let fetchDistance = 32

/// Up to four rows of C, `first...last`, all in one block of A, over the rows of A listed
/// in `tokens`: three vectors of columns at a time (twelve chains, enough to keep two
/// multiply-add units busy through their four cycles of latency; twelve accumulators, three
/// of B and a broadcast fill AVX2's sixteen registers, and half of AVX-512's 32), then two,
/// then one, then a number at a time. Fewer than four rows repeat the last, and two vectors
/// the second, whose chains are then not stored.
private struct Tile<T: KernelScalar> {
  let product: TransposedBlockSparseProduct<T>
  let tokens: UnsafePointer<Int32>
  let count: Int
  let first: Int
  let last: Int
  let c: UnsafeMutablePointer<T>
  let transposedC: Bool
  /// Whether the tile is its task's first pass over the listed rows, whose first tile of two
  /// or three vectors fetches their numbers in all the task's columns ahead (`threeVectors`).
  let fetchesAhead: Bool

  @inline(__always)
  func compute<V: SIMD>(_ columns: Range<Int>, _: V.Type) where V.Scalar == T {
    let lanes = V.scalarCount
    var column = columns.lowerBound
    var fetching = fetchesAhead ? columns : nil  // by the first tile of vectors alone
    while column + 3 * lanes <= columns.upperBound {
      threeVectors(column, storing: 3, fetching: fetching, V.self)
      fetching = nil
      column += 3 * lanes
    }
    if column + 2 * lanes <= columns.upperBound {
      threeVectors(column, storing: 2, fetching: fetching, V.self)
      column += 2 * lanes
    }
    while column + lanes <= columns.upperBound {
      oneVector(column, V.self)
      column += lanes
    }
    while column < columns.upperBound {
      oneNumber(column)
      column += 1
    }
  }

  /// The four rows' offsets in a row of A: `first` to `last`, the last repeated.
  @inline(__always) var offsets: (Int, Int, Int, Int) {
    (first, min(first + 1, last), min(first + 2, last), min(first + 3, last))
  }

  @inline(__always)
  func threeVectors<V: SIMD>(
    _ column: Int, storing vectors: Int, fetching fetched: Range<Int>?, _: V.Type
  )
  where V.Scalar == T {
    let (p0, p1, p2, p3) = offsets
    let (a, b, depth, width) = (product.a, product.b, product.depth, product.columns)
    var (s00, s01, s10, s11) = (V(), V(), V(), V())
    var (s20, s21, s30, s31) = (V(), V(), V(), V())
    var (s02, s12, s22, s32) = (V(), V(), V(), V())
    var index = 0
    @inline(__always) func step() {
      let row = Int(tokens[index])
      let aRow = a + row &* depth
      let bRow = UnsafeRawPointer(b + row &* width + column)
      let y0 = bRow.loadUnaligned(as: V.self)
      let y1 = bRow.loadUnaligned(fromByteOffset: MemoryLayout<V>.stride, as: V.self)
      let y2 = bRow.loadUnaligned(
        fromByteOffset: (vectors - 1) * MemoryLayout<V>.stride, as: V.self)
      let x0 = V(repeating: aRow[p0])
      s00.addProduct(x0, y0)
      s01.addProduct(x0, y1)
      s02.addProduct(x0, y2)
      let x1 = V(repeating: aRow[p1])
      s10.addProduct(x1, y0)
      s11.addProduct(x1, y1)
      s12.addProduct(x1, y2)
      let x2 = V(repeating: aRow[p2])
      s20.addProduct(x2, y0)
      s21.addProduct(x2, y1)
      s22.addProduct(x2, y2)
      let x3 = V(repeating: aRow[p3])
      s30.addProduct(x3, y0)
      s31.addProduct(x3, y1)
      s32.addProduct(x3, y2)
    }
    if let fetched {
      // The rows of the token `fetchDistance` places ahead: its numbers of A and its lines
      // of B in the task's columns, a line's length apart and the last column's too (the
      // columns need not start a line).
      let lineLength = cacheLineBytes / MemoryLayout<T>.stride
      while index + fetchDistance < count {
        let ahead = Int(tokens[index + fetchDistance])
        prefetchForReading(a + ahead &* depth + p0)
        for line in stride(from: fetched.lowerBound, to: fetched.upperBound, by: lineLength) {
          prefetchForReading(b + ahead &* width + line)
        }
        prefetchForReading(b + ahead &* width + fetched.upperBound - 1)
        step()
        index += 1
      }
    }
    while index < count {
      step()
      index += 1
    }
    store((s00, s10, s20, s30), column)
    store((s01, s11, s21, s31), column + V.scalarCount)
    if vectors == 3 { store((s02, s12, s22, s32), column + 2 * V.scalarCount) }
  }

  @inline(__always)
  func oneVector<V: SIMD>(_ column: Int, _: V.Type) where V.Scalar == T {
    let (p0, p1, p2, p3) = offsets
    let (a, b, depth, width) = (product.a, product.b, product.depth, product.columns)
    var (s0, s1, s2, s3) = (V(), V(), V(), V())
    for index in 0..<count {
      let row = Int(tokens[index])
      let aRow = a + row &* depth
      let y = UnsafeRawPointer(b + row &* width + column).loadUnaligned(as: V.self)
      s0.addProduct(V(repeating: aRow[p0]), y)
      s1.addProduct(V(repeating: aRow[p1]), y)
      s2.addProduct(V(repeating: aRow[p2]), y)
      s3.addProduct(V(repeating: aRow[p3]), y)
    }
    store((s0, s1, s2, s3), column)
  }

  @inline(__always)
  func oneNumber(_ column: Int) {
    let (p0, p1, p2, p3) = offsets
    let (a, b, depth, width) = (product.a, product.b, product.depth, product.columns)
    var (s0, s1, s2, s3): (T, T, T, T) = (0, 0, 0, 0)
    for index in 0..<count {
      let row = Int(tokens[index])
      let aRow = a + row &* depth
      let y = b[row &* width + column]
      s0.addProduct(aRow[p0], y)
      s1.addProduct(aRow[p1], y)
      s2.addProduct(aRow[p2], y)
      s3.addProduct(aRow[p3], y)
    }
    write((s0, s1, s2, s3), column: column)
  }

  /// Writes the chains of the tile's rows, a vector each, from column `column`.
  @inline(__always)
  func store<V: SIMD>(_ sums: (V, V, V, V), _ column: Int) where V.Scalar == T {
    for lane in 0..<V.scalarCount {
      write((sums.0[lane], sums.1[lane], sums.2[lane], sums.3[lane]), column: column + lane)
    }
  }

  /// Writes the tile's rows' numbers in column `column` (the repeated rows' left out): into
  /// rows of C, or its columns with `transposedC`.
  @inline(__always)
  func write(_ sums: (T, T, T, T), column: Int) {
    func write(_ value: T, _ offset: Int) {
      let row = first + offset
      guard row <= last else { return }
      if transposedC {
        c[column * product.depth + row] = value
      } else {
        c[row * product.columns + column] = value
      }
    }
    write(sums.0, 0)
    write(sums.1, 1)
    write(sums.2, 2)
    write(sums.3, 3)
  }
}
