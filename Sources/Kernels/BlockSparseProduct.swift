/// A product `C = A · B` whose A is zero in most of each row's blocks of columns, computed
/// without those zeros: each row's chains take only the steps of its nonzero blocks.
///
/// A mixture's experts weighted by hard top-k routing are such an A, `[tokens, Σ rank]`,
/// every expert's block of `rank` columns zero but the k selected ones in each row (two of
/// six in the bench mixture: a third of the terms). Its update `weighted · B_allᵀ` and the
/// gradient of `x · A_allᵀ`, `dh · A_all`, are such products. In the dense kernel a step of
/// the inner dimension serves all of a tile's rows at once, so it could be skipped only where
/// every one of them holds a zero; here each row's numbers are broadcast in turn against B's
/// rows.
///
/// A is `[rows, depth]` (row stride `depth`), B `[depth, columns]` (row stride `columns`),
/// both read in place. Each element of C is the chain of fused multiply-adds over its row
/// of A, in increasing order from zero, that `matmul` computes, less the terms whose number
/// of A is zero; adding a product of zero leaves a chain's sum as it was, so C has
/// `matmul`'s bits (short of a zero's sign, or a NaN that a zero times an infinity or NaN
/// of B would make). With `accumulate` the chain is added to C at its end, as `matmul`
/// adds it.
///
/// Only the 256- and 128-bit kernels skip the zeros, and only up to 64 blocks (a bit each in
/// a row's mask): otherwise the dense product runs, with the same bits (`skips(on:)`).
/// Here each vector of B read serves one multiply-add, against six or eight in a dense
/// tile, and where the dense tile is twice as wide that no longer pays for the two thirds
/// of the work left out. The bench mixture's 2048 × 48 · 48 × 128 at two of six blocks, one
/// thread, best of 200 runs each, in two sittings (AMD EPYC Zen 5): 144 to 168 µs against
/// 187 to 207 dense on the AVX2 kernel, 125 to 134 against 101 to 113 on the AVX-512 kernel.
public struct BlockSparseProduct<T: KernelScalar> {
  let a: UnsafePointer<T>
  let b: UnsafePointer<T>
  let depth: Int
  let columns: Int
  /// Where each block of A's columns starts, and the end of the last (`depth`).
  let blockStarts: [Int]

  /// The product of `a` (`[rows, depth]`) and `b` (`[depth, columns]`), A's columns cut
  /// into `blocks`, which cover `0..<depth` in order.
  public init(
    a: UnsafePointer<T>, b: UnsafePointer<T>, depth: Int, columns: Int, blocks: [Range<Int>]
  ) {
    precondition(
      blocks.first?.lowerBound ?? 0 == 0 && blocks.last?.upperBound ?? 0 == depth
        && zip(blocks, blocks.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound },
      "blocks \(blocks) do not cover 0..<\(depth) in order")
    (self.a, self.b, self.depth, self.columns) = (a, b, depth, columns)
    blockStarts = blocks.map(\.lowerBound) + [depth]
  }

  /// Whether the product on `kernel` skips the zero blocks, or runs the dense one.
  func skips(on kernel: MatmulKernel) -> Bool { kernel != .avx512 && blockStarts.count <= 65 }

  /// The dense product of the same A and B: `matmul`'s shape.
  func shape(rows: Int) -> MatmulShape { MatmulShape(m: rows, n: columns, k: depth) }

  /// Computes `rows` of C (row stride `columns`), written or added, on all threads.
  @_specialize(where T == Float)
  @_specialize(where T == Double)
  public func run(
    rows: Int, into c: UnsafeMutablePointer<T>, accumulate: Bool, kernel: MatmulKernel = .native
  ) {
    guard skips(on: kernel) else {
      return matmul(a, b, into: c, shape(rows: rows), accumulate: accumulate, kernel: kernel)
    }
    forEachEvenChunk(rows, grain: rowsPerChunk(depth + columns, cost: 4)) { range in
      compute(
        rows: range, columns: 0..<columns, into: c, rowStride: columns, accumulate: accumulate,
        kernel: kernel)
    }
  }

  /// Computes the block `rows × columns` of C, whose rows are `rowStride` apart, on this
  /// thread, with the vectors of `kernel`.
  @_specialize(where T == Float)
  @_specialize(where T == Double)
  func compute(
    rows: Range<Int>, columns: Range<Int>, into c: UnsafeMutablePointer<T>, rowStride: Int,
    accumulate: Bool, kernel: MatmulKernel
  ) {
    let block = OutputBlock(
      product: self, columns: columns, c: c, rowStride: rowStride, accumulate: accumulate)
    switch kernel {
    case .avx512: block.compute(rows, T.Vector512.self)
    case .avx2: block.compute(rows, T.Vector256.self)
    case .neon, .portable: block.compute(rows, T.Vector128.self)
    }
  }
}

/// Some rows and columns of C of a `BlockSparseProduct`, computed with vectors of type `V`:
/// for each row, which of its blocks of A are nonzero (a bit each, found without a branch),
/// then its columns eight vectors at a time (eight chains a lane, enough to keep two
/// multiply-add units busy through their four cycles of latency), then a vector, then a
/// number at a time, each walking the nonzero blocks' steps in order.
private struct OutputBlock<T: KernelScalar> {
  let product: BlockSparseProduct<T>
  let columns: Range<Int>
  let c: UnsafeMutablePointer<T>
  let rowStride: Int
  let accumulate: Bool

  @inline(__always)
  func compute<V: SIMD>(_ rows: Range<Int>, _: V.Type) where V.Scalar == T {
    let lanes = V.scalarCount
    product.blockStarts.withUnsafeBufferPointer { starts in
      for row in rows {
        let blocks = nonzeroBlocks(row, starts)
        var column = columns.lowerBound
        while column + 8 * lanes <= columns.upperBound {
          eightVectors(row, column, blocks, starts, V.self)
          column += 8 * lanes
        }
        while column + lanes <= columns.upperBound {
          oneVector(row, column, blocks, starts, V.self)
          column += lanes
        }
        while column < columns.upperBound {
          oneNumber(row, column, blocks, starts)
          column += 1
        }
      }
    }
  }

  /// A bit for each block of row `row` of A that holds a number other than zero (a NaN
  /// counts, so that it reaches C as it would in `matmul`).
  @inline(__always)
  func nonzeroBlocks(_ row: Int, _ starts: UnsafeBufferPointer<Int>) -> UInt64 {
    let aRow = product.a + row * product.depth
    var blocks: UInt64 = 0
    for index in 0..<starts.count - 1 {
      // `|` rather than `||`: no branch per number, whose outcome (which blocks a row
      // holds) the processor cannot predict.
      var nonzero: UInt64 = 0
      for p in starts[index]..<starts[index + 1] { nonzero |= aRow[p] != 0 ? 1 : 0 }
      blocks |= nonzero << UInt64(index)
    }
    return blocks
  }

  /// Calls `body` with each step of the blocks set in `blocks`, in order.
  @inline(__always)
  func forEachStep(
    _ blocks: UInt64, _ starts: UnsafeBufferPointer<Int>, _ body: (Int) -> Void
  ) {
    var left = blocks
    while left != 0 {
      let index = left.trailingZeroBitCount
      left &= left - 1
      for p in starts[index]..<starts[index + 1] { body(p) }
    }
  }

  /// Row `row`'s `8 · V.scalarCount` columns from `column`.
  @inline(__always)
  func eightVectors<V: SIMD>(
    _ row: Int, _ column: Int, _ blocks: UInt64, _ starts: UnsafeBufferPointer<Int>, _: V.Type
  ) where V.Scalar == T {
    let aRow = product.a + row * product.depth
    let width = MemoryLayout<V>.stride
    var (s0, s1, s2, s3, s4, s5, s6, s7) = (V(), V(), V(), V(), V(), V(), V(), V())
    forEachStep(blocks, starts) { p in
      let x = V(repeating: aRow[p])
      let bRow = UnsafeRawPointer(product.b + p &* product.columns + column)
      s0.addProduct(x, bRow.loadUnaligned(as: V.self))
      s1.addProduct(x, bRow.loadUnaligned(fromByteOffset: width, as: V.self))
      s2.addProduct(x, bRow.loadUnaligned(fromByteOffset: 2 * width, as: V.self))
      s3.addProduct(x, bRow.loadUnaligned(fromByteOffset: 3 * width, as: V.self))
      s4.addProduct(x, bRow.loadUnaligned(fromByteOffset: 4 * width, as: V.self))
      s5.addProduct(x, bRow.loadUnaligned(fromByteOffset: 5 * width, as: V.self))
      s6.addProduct(x, bRow.loadUnaligned(fromByteOffset: 6 * width, as: V.self))
      s7.addProduct(x, bRow.loadUnaligned(fromByteOffset: 7 * width, as: V.self))
    }
    let target = c + row * rowStride + column
    let lanes = V.scalarCount
    store(s0, target)
    store(s1, target + lanes)
    store(s2, target + 2 * lanes)
    store(s3, target + 3 * lanes)
    store(s4, target + 4 * lanes)
    store(s5, target + 5 * lanes)
    store(s6, target + 6 * lanes)
    store(s7, target + 7 * lanes)
  }

  /// Row `row`'s `V.scalarCount` columns from `column`.
  @inline(__always)
  func oneVector<V: SIMD>(
    _ row: Int, _ column: Int, _ blocks: UInt64, _ starts: UnsafeBufferPointer<Int>, _: V.Type
  ) where V.Scalar == T {
    let aRow = product.a + row * product.depth
    var sum = V()
    forEachStep(blocks, starts) { p in
      let bRow = UnsafeRawPointer(product.b + p &* product.columns + column)
      sum.addProduct(V(repeating: aRow[p]), bRow.loadUnaligned(as: V.self))
    }
    store(sum, c + row * rowStride + column)
  }

  /// Row `row`'s column `column`.
  @inline(__always)
  func oneNumber(_ row: Int, _ column: Int, _ blocks: UInt64, _ starts: UnsafeBufferPointer<Int>) {
    let aRow = product.a + row * product.depth
    var sum: T = 0
    forEachStep(blocks, starts) { p in
      sum.addProduct(aRow[p], product.b[p &* product.columns + column])
    }
    let target = c + row * rowStride + column
    target.pointee = accumulate ? target.pointee + sum : sum
  }

  /// Writes `sum` at `target`, or adds it to what is there with `accumulate`.
  @inline(__always)
  func store<V: SIMD>(_ sum: V, _ target: UnsafeMutablePointer<T>) where V.Scalar == T {
    let p = UnsafeMutableRawPointer(target)
    p.storeBytes(of: accumulate ? p.loadUnaligned(as: V.self) + sum : sum, as: V.self)
  }
}
