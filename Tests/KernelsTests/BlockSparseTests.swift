import Testing

@testable import Kernels

/// A product whose A is zero in most of its blocks (`BlockSparseProduct`) skips only those
/// exact zeros: on every kernel (AVX-512's runs the dense product, which must agree too; the
/// others all run here, whatever the machine), in Float and Double, written or accumulated, it
/// has the bits of the sequential chain over the whole of A's rows (`matmulChain`), and added
/// into a dense product by the matmul, task by task, the bits of the two one after the other.
/// Rows with no zero block, with only zero blocks, and blocks of uneven widths; C's rows as
/// wide as whole groups of eight vectors, single vectors and single numbers.
@Test(arguments: MatmulKernel.allCases)
func blockSparseProductsKeepTheChainsBits(kernel: MatmulKernel) {
  let blocks = [0..<8, 8..<11, 11..<19, 19..<20, 20..<28]
  let depth = 28
  /// Zeros in about half of each row's blocks, none in row 1, all in row 2.
  func sparseA<T: BinaryFloatingPoint>(rows: Int, seed: UInt64) -> [T] {
    var a: [T] = fill(rows * depth, seed: seed)
    for row in 0..<rows where row != 1 {
      for (index, block) in blocks.enumerated() where row == 2 || (row * 7 + index * 3) % 5 < 3 {
        for p in block { a[row * depth + p] = 0 }
      }
    }
    return a
  }
  func check<T: KernelScalar>(_: T.Type) {
    for rows in oddSizes {
      for columns in [1, 3, 17, 33, 65, 128, 129] {
        let a: [T] = sparseA(rows: rows, seed: 21)
        let b: [T] = fill(depth * columns, seed: 22)
        let start: [T] = fill(rows * columns, seed: 23)
        let shape = MatmulShape(m: rows, n: columns, k: depth)
        for accumulate in [false, true] {
          var (sparse, chain) = (start, start)
          a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
              BlockSparseProduct(
                a: a.baseAddress!, b: b.baseAddress!, depth: depth, columns: columns,
                blocks: blocks
              ).run(rows: rows, into: &sparse, accumulate: accumulate, kernel: kernel)
            }
          }
          matmulChain(a, b, into: &chain, shape, accumulate: accumulate)
          let same = sameBits(sparse, chain)
          #expect(same, "\(kernel) \(T.self) \(shape) accumulate \(accumulate)")
        }
        // Added into a dense product: x · Wᵀ plus the sparse product.
        let linear = MatmulShape(m: rows, n: columns, k: 37, transposeB: true)
        let x: [T] = fill(rows * 37, seed: 24)
        let w: [T] = fill(columns * 37, seed: 25)
        var (sum, calls) = (start, start)
        a.withUnsafeBufferPointer { a in
          b.withUnsafeBufferPointer { b in
            let product = BlockSparseProduct(
              a: a.baseAddress!, b: b.baseAddress!, depth: depth, columns: columns,
              blocks: blocks)
            matmul(x, w, linear, plus: product, into: &sum, kernel: kernel)
          }
        }
        matmulChain(x, w, into: &calls, linear)
        matmulChain(a, b, into: &calls, shape, accumulate: true)
        let same = sameBits(sum, calls)
        #expect(same, "\(kernel) \(T.self) \(linear) plus \(shape)")
      }
    }
  }
  check(Float.self)
  check(Double.self)
}

/// A NaN in A reaches C as in the whole chain: its block counts as one that is not zero.
@Test func aNaNInABlockReachesC() {
  var a: [Float] = [0, 0, 0, 0, 1, 2]
  a[1] = .nan
  let b: [Float] = fill(6 * 5, seed: 26)
  var c = [Float](repeating: 0, count: 5)
  a.withUnsafeBufferPointer { a in
    b.withUnsafeBufferPointer { b in
      BlockSparseProduct(
        a: a.baseAddress!, b: b.baseAddress!, depth: 6, columns: 5, blocks: [0..<2, 2..<4, 4..<6]
      ).run(rows: 1, into: &c, accumulate: false)
    }
  }
  #expect(c.allSatisfy { $0.isNaN })
}

/// More blocks than a row's mask has bits (64) run the dense product: the same bits still.
@Test(arguments: MatmulKernel.allCases)
func moreThan64BlocksGiveTheChainsBitsToo(kernel: MatmulKernel) {
  let (rows, depth, columns) = (9, 70, 33)
  var a: [Float] = fill(rows * depth, seed: 27)
  for index in stride(from: 0, to: a.count, by: 3) { a[index] = 0 }
  let b: [Float] = fill(depth * columns, seed: 28)
  var (sparse, chain) = (
    [Float](repeating: 0, count: rows * columns), [Float](repeating: 0, count: rows * columns)
  )
  a.withUnsafeBufferPointer { a in
    b.withUnsafeBufferPointer { b in
      BlockSparseProduct(
        a: a.baseAddress!, b: b.baseAddress!, depth: depth, columns: columns,
        blocks: (0..<depth).map { $0..<$0 + 1 }
      ).run(rows: rows, into: &sparse, accumulate: false, kernel: kernel)
    }
  }
  matmulChain(a, b, into: &chain, MatmulShape(m: rows, n: columns, k: depth))
  let same = sameBits(sparse, chain)
  #expect(same, "\(kernel)")
}

/// The transposed product, `Aᵀ · B` over only the rows that select each block of A's columns
/// (`TransposedBlockSparseProduct`), has the bits of the sequential chain over all of A's
/// rows (`matmulChain` with `transposeA`), and written transposed, those of the chain of
/// `Bᵀ · A`: on every kernel, in Float and Double, with blocks of uneven widths (one to eight
/// columns: tiles of four rows and fewer), three blocks selected a row, one of them zero in
/// some rows (selected all the same) and all three in row 2, a block no row selects, and C's
/// rows as wide as whole groups of three vectors, two, one and single numbers.
@Test(arguments: MatmulKernel.allCases)
func transposedBlockSparseProductsKeepTheChainsBits(kernel: MatmulKernel) {
  let blocks = [0..<8, 8..<11, 11..<19, 19..<20, 20..<28, 28..<30]
  let depth = 30
  func check<T: KernelScalar>(_: T.Type) {
    for rows in oddSizes {
      // Row r selects blocks r, r + 1 and r + 3 (mod 5): never block 5.
      let selected = (0..<rows).flatMap { [$0 % 5, ($0 + 1) % 5, ($0 + 3) % 5] }
      var a: [T] = fill(rows * depth, seed: 31)
      for row in 0..<rows {
        for (index, block) in blocks.enumerated()
        where !selected[3 * row..<3 * row + 3].contains(index) || row == 2
          || (row % 4 == 0 && index == selected[3 * row])
        {
          for p in block { a[row * depth + p] = 0 }
        }
      }
      let blockRows = BlockRows(blocks: blocks, selected: selected, perRow: 3)
      for columns in [1, 3, 17, 33, 65, 128, 129] {
        let b: [T] = fill(rows * columns, seed: 32)
        var (sparse, chain) = (
          [T](repeating: .nan, count: depth * columns), [T](repeating: 0, count: depth * columns)
        )
        var (sparseTransposed, chainTransposed) = (sparse, chain)
        a.withUnsafeBufferPointer { a in
          b.withUnsafeBufferPointer { b in
            let product = TransposedBlockSparseProduct(
              a: a.baseAddress!, b: b.baseAddress!, depth: depth, columns: columns,
              blockRows: blockRows)
            product.run(into: &sparse, kernel: kernel)
            product.run(into: &sparseTransposed, transposedC: true, kernel: kernel)
          }
        }
        matmulChain(
          a, b, into: &chain, MatmulShape(m: depth, n: columns, k: rows, transposeA: true))
        matmulChain(
          b, a, into: &chainTransposed, MatmulShape(m: columns, n: depth, k: rows, transposeA: true)
        )
        #expect(sameBits(sparse, chain), "\(kernel) \(T.self) \(rows) × \(columns)")
        #expect(
          sameBits(sparseTransposed, chainTransposed),
          "\(kernel) \(T.self) \(rows) × \(columns), C transposed")
      }
    }
  }
  check(Float.self)
  check(Double.self)
}
