/// `C = op(A) · op(B)` (or `C += …` with `accumulate`), fast.
///
/// The ladder from the triple loop (`matmulReference`) to this function is lesson 02:
/// a register-blocked SIMD microkernel computes an 8-row by 2-vector tile of C in
/// registers over the whole inner dimension; B is read in panels as wide as the tile,
/// packed into a contiguous copy where its rows are not contiguous or would collide in
/// cache; tiles are grouped into cache-sized tasks; tasks run on
/// `Parallelism.threadCount` threads. Each element of C is computed by one task in one
/// fixed order, so results do not depend on the thread count.
public func matmul(
  _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into c: UnsafeMutablePointer<Float>,
  _ shape: MatmulShape, accumulate: Bool = false
) {
  TiledMatmul<SIMD16<Float>>(a: a, b: b, c: c, shape: shape, accumulate: accumulate).run()
}

/// `C = op(A) · op(B)` in Double, fast; see the Float version.
public func matmul(
  _ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, into c: UnsafeMutablePointer<Double>,
  _ shape: MatmulShape, accumulate: Bool = false
) {
  TiledMatmul<SIMD8<Double>>(a: a, b: b, c: c, shape: shape, accumulate: accumulate).run()
}

/// Rows of C computed together by the microkernel.
let tileRows = 8
/// Tiles of rows per task.
let tilesPerTask = 8
/// Column panels per task.
let panelsPerTask = 4
/// At or above this many floating-point operations a product runs on all threads; below
/// it, starting the threads costs more than they save.
let largeProductFlops = 1.5e6

/// One product's plan: the tile grid, and where each tile of A and panel of B is read from.
///
/// C is cut into tiles of `tileRows` rows by one panel of `panelWidth` columns (two SIMD
/// vectors). A tile of A rows is read in place, with A's own strides. A panel of B is read
/// in place (row stride n) or from a packed copy: `k` rows of `panelWidth` scalars.
/// Edge tiles read zero-padded copies of the last rows of A and last columns of B, so they
/// run the same kernel. (Packing A too was measured slower: at n = 128 it costs as much as
/// a quarter of the multiply, because only 4 panels reuse each packed strip.)
private struct TiledMatmul<V: SIMD> where V.Scalar: BinaryFloatingPoint {
  typealias Scalar = V.Scalar
  let a: UnsafePointer<Scalar>
  let b: UnsafePointer<Scalar>
  let c: UnsafeMutablePointer<Scalar>
  let shape: MatmulShape
  let accumulate: Bool

  var panelWidth: Int { 2 * V.scalarCount }
  var rowTiles: Int { (shape.m + tileRows - 1) / tileRows }
  var panels: Int { (shape.n + panelWidth - 1) / panelWidth }
  var stripSize: Int { shape.k * tileRows }
  var panelSize: Int { shape.k * panelWidth }
  var large: Bool { shape.flops >= largeProductFlops }
  /// Whether B is read from a packed copy rather than in place. A transposed B must be:
  /// its panel rows are not contiguous. A large product also packs a B whose row stride is
  /// a multiple of 4 KiB, because in place every row of a panel would fall in the same
  /// cache set (measured at n = 1024: 190 to 205 GFLOP/s packed against 160 to 200 in place).
  var packB: Bool {
    shape.transposeB || (large && (shape.bRowStride * MemoryLayout<Scalar>.stride) % 4096 == 0)
  }
  /// Distinct matrices B in the batch: one when its batch stride is 0.
  var distinctB: Int { shape.batchStrideB == 0 ? 1 : shape.batch }

  func run() {
    if shape.batch == 0 || shape.m == 0 || shape.n == 0 { return }
    if shape.k == 0 {
      if !accumulate {
        for item in 0..<shape.batch {
          for row in 0..<shape.m {
            (c + item * shape.batchStrideC + row * shape.leadingDimensionC).update(
              repeating: 0, count: shape.n)
          }
        }
      }
      return
    }
    let packedCount = packB ? distinctB * panels * panelSize : 0
    Scratch.with(Scalar.self, count: packedCount) { packed in
      let packedB = packedCount > 0 ? packed : nil
      if let packedB {
        forEach(distinctB * panels) { task in
          let matrix = task / panels
          let panel = task % panels
          packPanel(b + matrix * shape.batchStrideB, panel: panel, into: packedB + task * panelSize)
        }
      }
      let rowBlocks = (rowTiles + tilesPerTask - 1) / tilesPerTask
      let panelBlocks = (panels + panelsPerTask - 1) / panelsPerTask
      forEach(shape.batch * rowBlocks * panelBlocks) { task in
        let item = task / (rowBlocks * panelBlocks)
        let block = task % (rowBlocks * panelBlocks)
        multiplyBlock(
          item: item,
          tiles: (block / panelBlocks)
            * tilesPerTask..<min(rowTiles, (block / panelBlocks + 1) * tilesPerTask),
          panels: (block % panelBlocks)
            * panelsPerTask..<min(panels, (block % panelBlocks + 1) * panelsPerTask),
          packedB: packedB)
      }
    }
  }

  /// Runs the tasks on all threads for a large product, in order on this thread otherwise.
  func forEach(_ count: Int, _ body: (Int) -> Void) {
    if large { parallelFor(count, body) } else { for task in 0..<count { body(task) } }
  }

  /// Computes the C tiles `tiles × panels` of one item of the batch.
  func multiplyBlock(
    item: Int, tiles: Range<Int>, panels: Range<Int>, packedB: UnsafeMutablePointer<Scalar>?
  ) {
    let aItem = a + item * shape.batchStrideA
    let bItem = b + item * shape.batchStrideB
    let cItem = c + item * shape.batchStrideC
    let n = shape.n
    let ldc = shape.leadingDimensionC
    // Room for edge tiles: a padded strip of A's last rows, a padded panel of B's last
    // columns, and a whole C tile.
    Scratch.with(Scalar.self, count: stripSize + panelSize + tileRows * panelWidth) { scratch in
      let edgeStrip = scratch
      let edgePanel = scratch + stripSize
      let edgeTile = scratch + stripSize + panelSize
      for panel in panels {
        let column = panel * panelWidth
        let columns = min(panelWidth, n - column)
        var bPanel: UnsafePointer<Scalar>
        var bRowStride = panelWidth
        if let packedB {
          bPanel = UnsafePointer(
            packedB + ((distinctB == 1 ? 0 : item) * self.panels + panel) * panelSize)
        } else if columns < panelWidth {
          packPanel(bItem, panel: panel, into: edgePanel)
          bPanel = UnsafePointer(edgePanel)
        } else {
          bPanel = bItem + column
          bRowStride = shape.bRowStride
        }
        for tile in tiles {
          let row = tile * tileRows
          let rows = min(tileRows, shape.m - row)
          var aTile: UnsafePointer<Scalar>
          var aStrides = (row: 1, column: tileRows)
          if rows < tileRows {
            packStrip(aItem, row: row, into: edgeStrip)
            aTile = UnsafePointer(edgeStrip)
          } else {
            aTile = aItem + row * shape.aRowStride
            aStrides = (row: shape.aRowStride, column: shape.aColumnStride)
          }
          let cTile = cItem + row * ldc + column
          if rows == tileRows && columns == panelWidth {
            microkernel(
              shape.k, aTile, aStrides, bPanel, bRowStride, cTile, ldc, accumulate, vector: V.self)
            continue
          }
          // An edge tile: compute the whole padded tile aside, keep the part inside C.
          microkernel(
            shape.k, aTile, aStrides, bPanel, bRowStride, edgeTile, panelWidth, false,
            vector: V.self)
          for r in 0..<rows {
            for j in 0..<columns {
              let value = edgeTile[r * panelWidth + j]
              cTile[r * ldc + j] = accumulate ? cTile[r * ldc + j] + value : value
            }
          }
        }
      }
    }
  }

  /// Copies columns `panel * panelWidth ..< (panel + 1) * panelWidth` of `op(B)` into
  /// `packed`, row after row, with zeros past B's last column.
  func packPanel(_ b: UnsafePointer<Scalar>, panel: Int, into packed: UnsafeMutablePointer<Scalar>)
  {
    let first = panel * panelWidth
    let columns = min(panelWidth, shape.n - first)
    if columns < panelWidth { packed.update(repeating: 0, count: panelSize) }
    if shape.transposeB {
      // B is stored [n, k]: column j of op(B) is a contiguous row of storage.
      // Column j of op(B) is row j of storage. Copy in 8 × 8 blocks, so that both the
      // rows read and the rows written stay in a few cache lines (measured 2 to 4 times
      // faster than copying one column at a time).
      let ld = shape.leadingDimensionB
      let k = shape.k
      for j0 in stride(from: 0, to: columns, by: 8) {
        let blockColumns = min(8, columns - j0)
        for p0 in stride(from: 0, to: k, by: 8) {
          let blockRows = min(8, k - p0)
          let source = b + (first + j0) * ld + p0
          let target = packed + p0 * panelWidth + j0
          if blockColumns == 8 && blockRows == 8 {
            // A whole block, with fixed trip counts the compiler unrolls.
            for j in 0..<8 {
              for p in 0..<8 { target[p &* panelWidth &+ j] = source[j &* ld &+ p] }
            }
          } else {
            for j in 0..<blockColumns {
              for p in 0..<blockRows { target[p * panelWidth + j] = source[j * ld + p] }
            }
          }
        }
      }
    } else {
      for p in 0..<shape.k {
        (packed + p * panelWidth).update(
          from: b + p * shape.leadingDimensionB + first, count: columns)
      }
    }
  }

  /// Copies rows `row ..< row + tileRows` of `op(A)` into `strip` as `k` groups of
  /// `tileRows` scalars, with zeros for rows past A's last.
  func packStrip(_ a: UnsafePointer<Scalar>, row: Int, into strip: UnsafeMutablePointer<Scalar>) {
    let rows = min(tileRows, shape.m - row)
    if rows < tileRows { strip.update(repeating: 0, count: stripSize) }
    if shape.transposeA {
      // A is stored [k, m]: the tile's rows at one p are contiguous.
      for p in 0..<shape.k {
        (strip + p * tileRows).update(from: a + p * shape.leadingDimensionA + row, count: rows)
      }
    } else {
      for r in 0..<rows {
        let source = a + (row + r) * shape.leadingDimensionA
        for p in 0..<shape.k { strip[p * tileRows + r] = source[p] }
      }
    }
  }
}

/// Computes one `tileRows × 2·V.scalarCount` tile of C over the whole inner dimension,
/// holding all sixteen accumulators in registers.
///
/// `A[r, p]` is at `a[r * aStrides.row + p * aStrides.column]`; row `p` of the B panel is
/// two vectors at `b + p * bRowStride`; row `r` of the C tile starts at `c + r * cRowStride`.
@inline(never)
private func microkernel<V: SIMD>(
  _ depth: Int, _ a: UnsafePointer<V.Scalar>, _ aStrides: (row: Int, column: Int),
  _ b: UnsafePointer<V.Scalar>, _ bRowStride: Int,
  _ c: UnsafeMutablePointer<V.Scalar>, _ cRowStride: Int, _ accumulate: Bool, vector: V.Type
) where V.Scalar: BinaryFloatingPoint {
  var c00 = V()
  var c01 = V()
  var c10 = V()
  var c11 = V()
  var c20 = V()
  var c21 = V()
  var c30 = V()
  var c31 = V()
  var c40 = V()
  var c41 = V()
  var c50 = V()
  var c51 = V()
  var c60 = V()
  var c61 = V()
  var c70 = V()
  var c71 = V()
  let s = aStrides.row
  var ap = a
  var bp = UnsafeRawPointer(b)
  let bStep = bRowStride * MemoryLayout<V.Scalar>.stride
  let half = MemoryLayout<V>.stride
  for _ in 0..<depth {
    let b0 = bp.loadUnaligned(as: V.self)
    let b1 = bp.loadUnaligned(fromByteOffset: half, as: V.self)
    var x = V(repeating: ap[0])
    c00.addProduct(x, b0)
    c01.addProduct(x, b1)
    x = V(repeating: ap[s])
    c10.addProduct(x, b0)
    c11.addProduct(x, b1)
    x = V(repeating: ap[2 * s])
    c20.addProduct(x, b0)
    c21.addProduct(x, b1)
    x = V(repeating: ap[3 * s])
    c30.addProduct(x, b0)
    c31.addProduct(x, b1)
    x = V(repeating: ap[4 * s])
    c40.addProduct(x, b0)
    c41.addProduct(x, b1)
    x = V(repeating: ap[5 * s])
    c50.addProduct(x, b0)
    c51.addProduct(x, b1)
    x = V(repeating: ap[6 * s])
    c60.addProduct(x, b0)
    c61.addProduct(x, b1)
    x = V(repeating: ap[7 * s])
    c70.addProduct(x, b0)
    c71.addProduct(x, b1)
    ap += aStrides.column
    bp += bStep
  }
  @inline(__always) func store(_ row: Int, _ left: V, _ right: V) {
    let p = UnsafeMutableRawPointer(c + row * cRowStride)
    if accumulate {
      p.storeBytes(of: p.loadUnaligned(as: V.self) + left, as: V.self)
      p.storeBytes(
        of: p.loadUnaligned(fromByteOffset: half, as: V.self) + right, toByteOffset: half,
        as: V.self)
    } else {
      p.storeBytes(of: left, as: V.self)
      p.storeBytes(of: right, toByteOffset: half, as: V.self)
    }
  }
  store(0, c00, c01)
  store(1, c10, c11)
  store(2, c20, c21)
  store(3, c30, c31)
  store(4, c40, c41)
  store(5, c50, c51)
  store(6, c60, c61)
  store(7, c70, c71)
}
