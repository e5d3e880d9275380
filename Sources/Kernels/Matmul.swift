/// `C = op(A) · op(B)` (or `C += …` with `accumulate`), fast.
///
/// The ladder from the triple loop (`matmulReference`) to this function is lesson 02:
/// a register-blocked SIMD microkernel (below, one per instruction set)
/// computes a tile of C in registers over the whole inner dimension; B is read in panels as
/// wide as the tile, packed into a contiguous copy where its rows are not contiguous or
/// would collide in cache; tiles are grouped into cache-sized tasks; tasks run on
/// `Parallelism.threadCount` threads. Each element of C is one chain of fused
/// multiply-adds computed by one task, so results depend neither on the thread count nor
/// on the kernel.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func matmul<T: KernelScalar>(
  _ a: UnsafePointer<T>, _ b: UnsafePointer<T>, into c: UnsafeMutablePointer<T>,
  _ shape: MatmulShape, accumulate: Bool = false, kernel: MatmulKernel = .native
) {
  let started = MatmulProfile.start()
  switch kernel {
  case .avx512: TiledMatmul<EightRowKernel<T.Vector512>>(a, b, c, shape, accumulate).run()
  case .avx2: TiledMatmul<SixRowKernel<T.Vector256>>(a, b, c, shape, accumulate).run()
  case .neon: TiledMatmul<TwelveRowKernel<T.Vector128>>(a, b, c, shape, accumulate).run()
  case .portable: TiledMatmul<SixRowKernel<T.Vector128>>(a, b, c, shape, accumulate).run()
  }
  if let started { MatmulProfile.add(shape, accumulate: accumulate, started: started) }
}

/// `C = op(A) · op(B) + op(A₂) · op(B₂)`: two products of the same C (the same rows and
/// columns, each its own inner dimension), the second added as `accumulate` adds it, so
/// with the bits of the two calls one after the other. They run task by task: each task
/// adds the second product into its block of C just after writing it, while the block is
/// still in its cache, where the second call would read C back from memory. A Linear plus
/// its low-rank update (`linearPlusUpdate`): the bench mixture's 16 of them (2048 × 128 · 128
/// × 128 plus 2048 × 48 · 48 × 128) took 5.97 and 6.03 ms of its step against 6.16 and 6.31
/// for the two calls (7.30 against 8.16 in a slow minute, when memory is shared with other
/// machines), and the step 0.987 times the time (the mean of ten pairs in turns, eight of
/// them faster; AVX2 kernel on the AMD EPYC Zen 5, 2 threads). The AVX-512 kernel's step did
/// not change beyond the noise.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func matmul<T: KernelScalar>(
  _ a: UnsafePointer<T>, _ b: UnsafePointer<T>, _ shape: MatmulShape,
  plus a2: UnsafePointer<T>, _ b2: UnsafePointer<T>, _ shape2: MatmulShape,
  into c: UnsafeMutablePointer<T>, kernel: MatmulKernel = .native
) {
  precondition(
    shape.m == shape2.m && shape.n == shape2.n && shape.batch == shape2.batch
      && shape.leadingDimensionC == shape2.leadingDimensionC
      && shape.batchStrideC == shape2.batchStrideC,
    "a sum of products of different outputs: \(shape) and \(shape2)")
  let started = MatmulProfile.start()
  func pair<Kernel: Microkernel>(_: Kernel.Type) where Kernel.Vector.Scalar == T {
    TiledMatmul<Kernel>.runSum(
      TiledMatmul(a, b, c, shape, false), TiledMatmul(a2, b2, c, shape2, true))
  }
  switch kernel {
  case .avx512: pair(EightRowKernel<T.Vector512>.self)
  case .avx2: pair(SixRowKernel<T.Vector256>.self)
  case .neon: pair(TwelveRowKernel<T.Vector128>.self)
  case .portable: pair(SixRowKernel<T.Vector128>.self)
  }
  if let started { MatmulProfile.add(shape, plus: shape2, started: started) }
}

/// `C = op(A) · op(B) + A₂ · B₂` with A₂ zero in most of its blocks (`sparse`), the second
/// added as `matmul(_:_:_:plus:…)` adds a dense one: task by task, into the block of C the
/// task has just written, with the bits of this product alone and then
/// `sparse.run(…, accumulate: true)`. A Linear plus a hard-routed mixture's update
/// (`linearPlusUpdate`).
@_specialize(where T == Float)
@_specialize(where T == Double)
public func matmul<T: KernelScalar>(
  _ a: UnsafePointer<T>, _ b: UnsafePointer<T>, _ shape: MatmulShape,
  plus sparse: BlockSparseProduct<T>, into c: UnsafeMutablePointer<T>,
  kernel: MatmulKernel = .native
) {
  precondition(
    shape.batch == 1 && shape.leadingDimensionC == shape.n && sparse.columns == shape.n,
    "a block-sparse sum with \(shape) and \(sparse.columns) columns")
  let started = MatmulProfile.start()
  func pair<Kernel: Microkernel>(_: Kernel.Type) where Kernel.Vector.Scalar == T {
    let first = TiledMatmul<Kernel>(a, b, c, shape, false)
    if sparse.skips(on: kernel) {
      first.runSum(sparse, kernel: kernel)
    } else {
      TiledMatmul.runSum(
        first, TiledMatmul(sparse.a, sparse.b, c, sparse.shape(rows: shape.m), true))
    }
  }
  switch kernel {
  case .avx512: pair(EightRowKernel<T.Vector512>.self)
  case .avx2: pair(SixRowKernel<T.Vector256>.self)
  case .neon: pair(TwelveRowKernel<T.Vector128>.self)
  case .portable: pair(SixRowKernel<T.Vector128>.self)
  }
  if let started {
    MatmulProfile.add(
      shape, plus: sparse, skipped: sparse.skips(on: kernel),
      started: started)
  }
}

/// Rows of C per task, about: a task's strip of A stays in the level-2 cache.
let rowsPerTask = 64
/// Columns of C per task, about: a task's panels of B stay in the level-2 cache.
let columnsPerTask = 128
/// Fewest tasks a large product is cut into, when it has enough row tiles.
let minimumTasks = 8
/// Steps of the inner dimension per pass over a task's tiles: a slice of a B panel this
/// deep (16 KiB for a 16-wide Float panel) stays in the level-1 cache while every tile of
/// the task uses it. A longer inner dimension is walked in slices, each tile resuming the
/// fused multiply-add chains where the previous slice left them. (A narrow panel may take
/// up to twice this in one pass: `TiledMatmul.passDepth`.)
let depthPerPass = 256
/// Most bytes of a B panel one pass may read (`TiledMatmul.passDepth`): the level-1 data
/// cache of the AMD EPYC Zen 3 (32 KiB a core, `lscpu`).
let onePassPanelBytes = 32 << 10
/// Fewest steps of the inner dimension for which a tile's lines of C are fetched ahead: a
/// shorter tile writes them almost as soon as it starts, and the fetch only adds work.
let prefetchDepth = 16
/// Rows of B per task when a B stored `[k, n]` is packed (`TiledMatmul.packRows`): each task
/// reads its rows whole, in order, and copies them into every panel. Packed panel by
/// panel, the rows of a panel are a whole row of B apart, which the hardware prefetcher
/// does not follow: 7% of the samples of 512³ A·B; 1024³ A·B ran 1.02 to 1.04 times as fast
/// row by row (AMD EPYC Zen 3, AVX2 kernel, 2 threads, in turns).
let packRowsPerTask = 64
/// Fewest row tiles a task needs for copying slices of an in-place B to pay: a slice is
/// copied once per panel and pass and read by every tile of the task (with three tiles, 128³
/// on the AVX2 kernel, not copying was 3 to 6% faster).
let minimumSliceTiles = 4
/// Largest B of a deep product packed whole rather than sliced by its tasks
/// (`TiledMatmul.packB`): half the level-2 cache of the AMD EPYC Zen 3 (512 KiB a core,
/// `lscpu`), so that B stays there while the tasks read it.
let packedBBytes = 256 << 10
/// Fewest bytes of a product's op(B) for which its tasks are numbered panel block by panel
/// block (`TiledMatmul.panelMajor`). On the Intel Xeon (Emerald Rapids, 2 MiB of level-2
/// cache a core), 512³ products (a B of 1 MiB) gained so and one with a B of 192 KiB lost.
let panelMajorBBytes = 1 << 20
/// Steps of the inner dimension by which a deep product's packing of its transposed A fetches
/// A's rows ahead (`TiledMatmul.fetchesRowsOfAAhead`).
let packAheadRows = 8
/// Fewest steps of the inner dimension that make a transposed-A product deep
/// (`TiledMatmul.deep`): four passes of `depthPerPass`.
let deepProductDepth = 1024
/// Longest rows of a transposed A (`[k, m]` stored, so m numbers each) that a deep product
/// reads in place rather than packed (`TiledMatmul.packA`): eight or more to a 4 KiB page.
let shortRowBytes = 512
/// Most bytes of the packed strips of A one task of a deep product uses per pass, so that
/// they stay in the level-2 cache while the task's panels of B stream past them: a quarter
/// of the AMD EPYC Zen 3's (512 KiB a core, `lscpu`), 21 tiles on the AVX2 kernel; twice
/// this on the AVX-512 kernel (`TiledMatmul.deepStripBudget`).
let deepStripBytes = 128 << 10
/// At or above this many floating-point operations a product runs on all threads; below
/// it, starting the threads costs more than they save. (The mixture's narrow products of
/// 1.2 million, 2048 × 6 · 6 × 48 and 2048 × 48 · 48 × 6: 1.3 to 1.9 times as fast on two
/// threads as on one; 64³, 0.5 million, 13% slower cut into tasks. AVX-512 kernel on the
/// AMD EPYC Zen 4, timed in turns. The threshold was 1.5 million when idle workers spun for
/// 2 ms.)
let largeProductFlops = 1e6

/// One product's plan: the tile grid, and where each tile of A and panel of B is read from.
///
/// C is cut into tiles of `tileRows` rows by one panel of `panelWidth` columns (two SIMD
/// vectors). A tile's rows of A are read in place, with A's own strides, unless A is
/// transposed (`packA`: each task then copies its tiles' rows, one pass of the inner
/// dimension at a time). A panel of B is read in place (row stride n) or from a packed
/// copy (`packB`): `k` rows of `panelWidth` scalars. Edge tiles read zero-padded copies of
/// the last rows of A and last columns of B, so they run the same kernel.
private struct TiledMatmul<Kernel: Microkernel> {
  typealias Scalar = Kernel.Vector.Scalar
  let a: UnsafePointer<Scalar>
  let b: UnsafePointer<Scalar>
  let c: UnsafeMutablePointer<Scalar>
  let shape: MatmulShape
  let accumulate: Bool
  /// `Parallelism.threadCount`, read once: a deep product's tasks depend on it.
  let threads = Parallelism.threadCount

  init(
    _ a: UnsafePointer<Scalar>, _ b: UnsafePointer<Scalar>, _ c: UnsafeMutablePointer<Scalar>,
    _ shape: MatmulShape, _ accumulate: Bool
  ) {
    (self.a, self.b, self.c, self.shape, self.accumulate) = (a, b, c, shape, accumulate)
  }

  var tileRows: Int { Kernel.rows }
  var panelWidth: Int { 2 * Kernel.Vector.scalarCount }
  var tilesPerTask: Int { max(1, rowsPerTask / tileRows) }
  /// Panels per task: `columnsPerTask` wide, or every panel when the task packs its rows of
  /// A, so that it packs them once (m = 2048, k = 128, n = 384, Aᵀ·B: 0.82 of numpy's speed
  /// with three tasks packing the same rows, on the AMD EPYC Zen 4); one when each task packs
  /// its own panel of a transposed B (`packsPanelsInTasks`). But when A's rows
  /// make fewer than `minimumTasks` blocks of `tilesPerTask`, half the panels: two tasks
  /// pack the same rows, and each slice of a B panel serves more tiles (256³ `Aᵀ·B` on the
  /// AVX2 kernel, 5 row blocks: 1.05 times as fast, five pairs in turns, on the AMD EPYC
  /// Zen 5). A deep product cut along its panels shares them out among the threads.
  var panelsPerTask: Int {
    if deep { return deepSplitsPanels ? (panels + threads - 1) / threads : panels }
    if packsPanelsInTasks { return 1 }
    if packA { return fewRowBlocks ? (panels + 1) / 2 : panels }
    return max(1, columnsPerTask / panelWidth)
  }
  /// Blocks of `panelsPerTask` panels that cover the columns of C.
  var panelBlocks: Int { (panels + panelsPerTask - 1) / panelsPerTask }
  /// Whether the product is deep: a large transposed A (`largeTransposedA`) and an inner
  /// dimension of at least `deepProductDepth`, the weight gradients `gᵀ·x` over a
  /// batch's tokens. Each task streams its share of both operands from memory pass after
  /// pass, so that a cut along the rows makes every task read all of B, one along the
  /// panels all of A. Such a product is cut into as few tasks as keep every thread busy,
  /// along the smaller operand's dimension, and along the rows into groups whose strips of
  /// one pass stay within `deepStripBudget`. How tiles are grouped into tasks never changes
  /// a bit (each element is one chain, computed by one task), so here, and only here, the
  /// grouping follows the thread count. The mixture's weight gradients (AVX2 kernel on the
  /// AMD EPYC Zen 3, 2 threads, inside its training step, two runs each): 48 × 2048 · 2048
  /// × 128 from 86 and 89 to 128 and 130 GFLOP/s, 128 × 2048 · 2048 × 48 from 94 and 97 to
  /// 120 and 123, the router's 6 × 2048 · 2048 × 128 from 58 and 59 to 85 and 90.
  var deep: Bool { largeTransposedA && shape.k >= deepProductDepth }
  /// Whether a deep product is cut along its panels (each task reads all of A, the smaller
  /// operand, and its share of B) rather than its rows.
  var deepSplitsPanels: Bool {
    shape.m < shape.n && rowTiles <= deepTilesPerTask && panels >= threads
  }
  /// Most row tiles of a deep product per task: their strips of one pass fill
  /// `deepStripBudget`.
  var deepTilesPerTask: Int {
    max(1, deepStripBudget / (tileRows * depthPerPass * MemoryLayout<Scalar>.stride))
  }
  /// Most bytes of a deep product's strips of A per task and pass: `deepStripBytes`, twice
  /// that for a kernel of 512-bit vectors, whose CPUs have 1 MiB (AMD Zen 4 and 5) or
  /// 2 MiB (Intel Xeon) of level-2 cache a core. Fewer, larger tasks read B fewer times: on
  /// the Intel Xeon (Emerald Rapids), AVX-512 kernel, 2 threads (a program calling the
  /// kernel, in turns), 384 × 2048 · 2048 × 128 ran at 329 to 330 GFLOP/s against 315 to
  /// 316, 512 × 2048 · 2048 × 128 at 330 to 331 against 311 to 312, the other weight
  /// gradients and 1024³ `Aᵀ·B` within 2%. The AVX2 kernel's, on the same CPU: 384 × 2048 ·
  /// 2048 × 128 0.95 times the speed, 128 × 2048 · 2048 × 384 1.06, 1024³ 0.98.
  var deepStripBudget: Int {
    MemoryLayout<Kernel.Vector>.size >= 64 ? 2 * deepStripBytes : deepStripBytes
  }
  var rowTiles: Int { (shape.m + tileRows - 1) / tileRows }
  var panels: Int { (shape.n + panelWidth - 1) / panelWidth }
  var stripSize: Int { shape.k * tileRows }
  var panelSize: Int { shape.k * panelWidth }
  /// Whether the product runs on all threads and is cut into at least `minimumTasks`.
  var large: Bool { shape.flops >= largeProductFlops }
  /// Whether one matrix product of the batch is large: the copies that pay for a large
  /// product (packing a transposed A, packing or slicing B) are decided by it, since they
  /// are about one matrix's rows in the caches, whatever the batch. Attention's products,
  /// a batch of 4 heads of 64 × 32 · 32 × 64 per sequence, are large only as a batch; each
  /// head's P is 16 KiB: on one thread `Pᵀ·dO` ran 1.31 and 1.36 times as fast with P read
  /// in place (no longer packed), `P·V` 1.02 and 1.04 with V read in place (no longer packed
  /// row by row); on two, attention's backward 1.08 and its forward 1.04 times (the bench
  /// model's layer, AMD EPYC Zen 3, AVX2 kernel, in turns; the same bits).
  var largeItem: Bool { shape.flops / Double(shape.batch) >= largeProductFlops }
  /// Whether B is read from a packed copy rather than in place. A transposed B must be (its
  /// panel rows are not contiguous), by all tasks first, unless each task packs its own
  /// (`packsPanelsInTasks`). A large product (`largeItem`) also packs a B whose row stride
  /// is a multiple of 4 KiB, because in place every row of a panel would fall in the same
  /// cache set (n = 1024 on the AMD EPYC Zen 4, AVX-512: 190 to 205 GFLOP/s packed against
  /// 160 to 200 in place). And a B whose panels every task reads with many tiles
  /// (`readsPanelsOften`: all of B once per row block) is packed once: the mixture's 2048 ×
  /// 128 · 128 × 128 to 128 × 512 products and 256³ ran 3 to 23% faster so, when this was
  /// first done for a B within `packedBBytes`; 512³, whose B is twice the level-2 cache,
  /// 1.07 to 1.17 times as fast A·B and 1.04 to 1.14 Aᵀ·B (AMD EPYC Zen 3, AVX2 kernel, 2
  /// threads, in turns). The AVX-512 kernel, whose tasks had read such a B in place
  /// (without slices of it), took 0.86 to 0.90 of the time packed on the bench model's
  /// 2048-row A·B products and 0.85 on 512³ A·B and Aᵀ·B, faster in 23 to 25 of 25 rounds
  /// of calls in turns in one process, its caches warm or not; 2048 × 48 · 48 × 128, 256³
  /// and 1024³ A·B 0.95 to 1.01 (Intel Xeon, Emerald Rapids, 2 threads). Except a deep
  /// product's B larger than `packedBBytes`: the product's few tasks read it once or twice
  /// each, and a packed copy goes to memory and back (the mixture's weight gradients
  /// `gᵀ·x`, 48 to 128 rows, 2048 deep: 0.96 to 0.99 times the speed in place, AMD EPYC Zen
  /// 3, AVX2 kernel, 2 threads, in turns).
  var packB: Bool {
    if packsPanelsInTasks { return false }
    return shape.transposeB
      || (largeItem && (shape.bRowStride * MemoryLayout<Scalar>.stride) % 4096 == 0)
      || (readsPanelsOften
        && (!deep || shape.k * shape.n * MemoryLayout<Scalar>.stride <= packedBBytes))
  }
  /// Whether each task packs its own panel of a transposed B, one task per panel with every
  /// row tile, instead of all tasks packing B first in a step of their own: a small product
  /// of one pass, whose rows make fewer than `minimumTasks` blocks, with at least that many
  /// panels. The step and its wait are gone, and each panel is packed once, by the task that
  /// reads it, into its level-1 cache (AMD EPYC Zen 5, 2 threads, in turns, GFLOP/s: 128³
  /// `A·Bᵀ` on the AVX2 kernel 222 to 225 against 201 to 207, 256³ 243 to 245 against 211
  /// to 233; 256³ on the AVX-512 kernel 472 to 506 against 344 to 381).
  var packsPanelsInTasks: Bool {
    shape.transposeB && !shape.transposeA && shape.batch == 1 && largeItem
      && shape.k <= depthPerPass && fewRowBlocks && panels >= minimumTasks
  }
  /// Whether the row tiles make fewer than `minimumTasks` blocks of `tilesPerTask`.
  var fewRowBlocks: Bool { rowBlocksOfTilesPerTask < minimumTasks }
  /// Blocks of `tilesPerTask` row tiles that cover the rows of C.
  var rowBlocksOfTilesPerTask: Int { (rowTiles + tilesPerTask - 1) / tilesPerTask }
  /// Whether every task of the product reads its panels of B with enough tiles
  /// (`minimumSliceTiles`) that in place it would copy each pass of them into a slice
  /// (`slicesPanels`): then all tasks together would copy B once per row block.
  var readsPanelsOften: Bool { slicesPanels(tiles: rowBlocking.tilesPerBlock) }
  /// Whether a task of `tiles` row tiles that reads B in place copies each pass of a panel
  /// into a contiguous slice before its tiles use it, when it has enough tiles to read the
  /// slice. (B is read in place by that many tiles only in a deep product whose B is larger
  /// than `packedBBytes`: `packB` packs any other.) In place, a panel's rows are a whole
  /// row of B apart: at a row of a multiple of 512 bytes (every bench shape) a pass of one
  /// (256 rows) falls in a quarter of the level-1 cache's sets or fewer and evicts itself
  /// before the next tile reads it. Measured on the AMD EPYC Zen 4, 2 threads, with and
  /// without in turns: the AVX2 kernel's 64-byte panel rows gained 10 to 17% (A·B and Aᵀ·B
  /// at 512³ and 2048 × 128 · 128 × 384), the AVX-512 kernel's 128-byte rows lost 5 to 7%
  /// on those products (which now pack B once), and until this rule held for every kernel,
  /// the AVX-512 kernel read its panels in place. On the Intel Xeon (Emerald Rapids), the
  /// AVX-512 kernel's deep weight gradients, 128 to 512 × 2048 · 2048 × 128 and 128 × 2048
  /// · 2048 × 384, took 0.80 to 0.95 of the time with the slices (faster in 19 to 21 of 21
  /// rounds of calls in turns in one process; with cold caches 0.83 to 0.95), 1024³ Aᵀ·B
  /// and those 48 wide 0.98 to 1.01.
  func slicesPanels(tiles: Int) -> Bool { largeItem && tiles >= minimumSliceTiles }
  /// Steps of the inner dimension per pass: `depthPerPass`, or the whole of a product of at
  /// most twice that whose pass of a B panel stays within `onePassPanelBytes`, so that its
  /// tiles go straight to C rather than keep their sums in the block buffer between two
  /// passes (the AVX2 kernel's 16-wide panels up to k = 512: nine products with k = 384 or
  /// 512 ran 0.99 to 1.16 times as fast, median 1.08, AMD EPYC Zen 3, 2 threads, timed in
  /// turns, when the block was still copied to C after the passes; at k = 2048 longer passes
  /// gained nothing; the AVX-512 kernel's 32-wide panels keep passes of 256).
  var passDepth: Int {
    let onePass =
      shape.k <= 2 * depthPerPass
      && shape.k * panelWidth * MemoryLayout<Scalar>.stride <= onePassPanelBytes
    return onePass ? shape.k : depthPerPass
  }
  /// Whether A is read from packed strips rather than in place. A transposed A is: in
  /// place, a tile's numbers at one `p` are contiguous but consecutive `p` are a whole row
  /// apart, so every step of the kernel touches a new cache line and, at large sizes, a new
  /// page (n = 1024 on the AMD EPYC Zen 3, AVX2, 2 threads: 59 GFLOP/s in place, against
  /// 99 for A·B in the same run). Each task packs its own tiles, one pass of the inner
  /// dimension at a time, just before it uses them, so the copy is read back from the
  /// level-2 cache; packed all at once before the products, it went to memory and back
  /// (m = 2048, k = n = 128: 0.6 of numpy's speed that way, on the AMD EPYC Zen 4).
  /// But a deep product whose rows of A are at most `shortRowBytes` long, eight or more to
  /// a page, reads them in place: its strided reads stay within a page for eight steps and
  /// more, and the copy cost more than they do. Inside the mixture's step, the 16 of each
  /// weight gradient, ms in place against packed (2 threads on the AMD EPYC Zen 5, three
  /// runs each in turns): on the AVX2 kernel the experts' 128 × 2048 · 2048 × 48 2.00 to
  /// 2.05 against 2.29 to 2.39, their 48 × 2048 · 2048 × 128 1.99 to 2.05 against 2.16 to
  /// 2.26, the routers' 6 × 2048 · 2048 × 128 0.34 to 0.36 against 0.41 to 0.42; on the
  /// AVX-512 kernel 1.12 to 1.13 against 1.34 to 1.37, 1.10 to 1.12 against 1.18 to 1.19,
  /// the routers' unchanged. `bench matmul`'s 128 × 2048 · 2048 × 128: 463 GFLOP/s against
  /// 412 on AVX-512, no change on AVX2. So does a product of such rows and at most
  /// `columnsPerTask` columns: each task takes all its panels, and the copy costs more than
  /// the strided reads save. Calls of one product after another on the Intel Xeon (Emerald
  /// Rapids, 2 threads; time in place ÷ packed, AVX-512 then AVX2 kernel): 128³ `Aᵀ·B` 0.53
  /// and 0.70 (12.0 µs against 22.7 on AVX-512), 96 × 128 · 128 × 128 0.59 and 0.60, 128 ×
  /// 256 · 256 × 128 0.73 and 0.74, 128 × 512 · 512 × 64 0.62 and 0.66, 100 × 256 · 256 ×
  /// 128 0.56 and 0.67; with more columns the copy pays: 128 × 300 · 300 × 200 1.04 and
  /// 1.12, 128 × 128 · 128 × 384 1.37 and 1.30.
  /// A product of one panel reads each number of A once, so there a copy only adds
  /// work, and A is read in place (LoRA's weight gradients, 384 × 1088 · 1088 × 8 and 128 ×
  /// 1088 · 1088 × 8 with A transposed: 1.6 and 2.0 times as fast, AVX2 kernel on the AMD
  /// EPYC Zen 3, 2 threads). Nor does a small product (not `largeItem`) copy it: its A is at
  /// most a few level-1 caches, and the copy, six numbers at a time, took most of the 23% of
  /// 64³ Aᵀ·B's samples spent outside the kernel (`perf`); in place, 64³, 32 × 64 · 64 × 64
  /// and 48 × 64 · 64 × 32 ran 1.10, 1.14 and 1.25 times as fast (AVX2 kernel on the AMD
  /// EPYC Zen 3, in turns).
  var packA: Bool {
    let shortRows = shape.leadingDimensionA * MemoryLayout<Scalar>.stride <= shortRowBytes
    return largeTransposedA && !(shortRows && (deep || shape.n <= columnsPerTask))
  }
  /// Whether op(A) is a transposed A of a large product of more than one panel: packed
  /// (`packA`) unless its rows of A are short and the product deep or narrow. Such a
  /// product's tasks are few and large (`panelsPerTask`, `rowBlocking`).
  var largeTransposedA: Bool { shape.transposeA && panels > 1 && largeItem }
  /// Whether `packTransposedA` asks for A's rows `packAheadRows` steps ahead of the one it
  /// copies: in a deep product whose rows of A are 1 KiB or longer. A task copies only its
  /// tiles' part of each row, so a 4 KiB page holds at most four of the parts it reads, and
  /// the hardware's prefetcher, which does not follow a stream across pages, starts cold on
  /// every page. Measured on the AMD EPYC Zen 3 (AVX2 kernel, in turns, 21 pairs): the
  /// weight gradients 384 × 2048 · 2048 × 128 and 512 × 2048 · 2048 × 128 (rows of 1.5 and
  /// 2 KiB) 1.34 times as fast on one thread and 1.03 to 1.12 on two, 1024³ `Aᵀ·B` 1.01 to
  /// 1.04. With rows of 512 bytes or less (128 × 2048 · 2048 × 128, 48 × 2048 · 2048 × 128),
  /// eight or more to a page, the requests only added work: 2 to 8% slower.
  var fetchesRowsOfAAhead: Bool {
    deep && shape.leadingDimensionA * MemoryLayout<Scalar>.stride >= 1024
  }
  /// Scalars in a cache line: the step between the lines asked for ahead (of A's rows,
  /// `fetchesRowsOfAAhead`, and of C's tiles, `prefetchTileForWriting`).
  var lineLength: Int { cacheLineBytes / MemoryLayout<Scalar>.stride }
  /// Columns of C from panel `panel`'s first to the last: more than `panelWidth` for all
  /// but the last panel.
  func columnsLeft(_ panel: Int) -> Int { shape.n - panel * panelWidth }
  /// Whether every column the kernel reads of panel `panel` and writes of C exists: both
  /// vectors, or the first vector of a narrow last panel that it fills exactly. Such a
  /// panel is read in place and written straight to C; any other last panel goes through
  /// zero-padded copies.
  func columnsExist(_ panel: Int) -> Bool {
    let columns = columnsLeft(panel)
    return columns >= panelWidth || columns == panelWidth / 2
  }
  /// Distinct matrices B in the batch: one when the batch stride is 0.
  var distinctB: Int { shape.batchStrideB == 0 ? 1 : shape.batch }

  /// Computes C (or adds the product to it, with `accumulate`).
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
    withPackedB { packedB in
      forEachTask { item, tiles, panels in
        multiplyBlock(item: item, tiles: tiles, panels: panels, packedB: packedB)
      }
    }
  }

  /// `first`, then `second` added into the same C, task by task (`matmul(_:_:_:plus:…)`): the
  /// tasks are `first`'s, and each computes its block of C for both products. (One after the
  /// other when either is empty, or when `second` would pack its panels of B task by task:
  /// that needs a task per panel.)
  static func runSum(_ first: Self, _ second: Self) {
    let empty =
      first.shape.batch == 0 || first.shape.m == 0 || first.shape.n == 0 || first.shape.k == 0
      || second.shape.k == 0
    guard !empty && !second.packsPanelsInTasks else {
      first.run()
      second.run()
      return
    }
    first.withPackedB { firstB in
      second.withPackedB { secondB in
        first.forEachTask { item, tiles, panels in
          first.multiplyBlock(item: item, tiles: tiles, panels: panels, packedB: firstB)
          second.multiplyBlock(item: item, tiles: tiles, panels: panels, packedB: secondB)
        }
      }
    }
  }

  /// This product, then `sparse` added into the same C, task by task: each task adds the
  /// sparse product into the block of C it has just written (`matmul(_:_:_:plus:into:…)`).
  func runSum(_ sparse: BlockSparseProduct<Scalar>, kernel: MatmulKernel)
  where Scalar: KernelScalar {
    guard shape.m > 0 && shape.n > 0 && shape.k > 0 else {
      run()
      sparse.run(rows: shape.m, into: c, accumulate: true, kernel: kernel)
      return
    }
    withPackedB { packedB in
      forEachTask { item, tiles, panels in
        multiplyBlock(item: item, tiles: tiles, panels: panels, packedB: packedB)
        sparse.compute(
          rows: tiles.lowerBound * tileRows..<min(shape.m, tiles.upperBound * tileRows),
          columns: panels.lowerBound * panelWidth..<min(shape.n, panels.upperBound * panelWidth),
          into: c, rowStride: shape.n, accumulate: true, kernel: kernel)
      }
    }
  }

  /// Calls `body` with B's packed panels, packed here, or nil when B is read in place
  /// (`packB`).
  func withPackedB(_ body: (UnsafeMutablePointer<Scalar>?) -> Void) {
    let bPanels = packB ? distinctB * panels : 0
    Scratch.with(Scalar.self, count: bPanels * panelSize) { packed in
      if bPanels > 0 && shape.transposeB {
        // A panel per task, from B's rows (`packPanel`).
        forEach(bPanels) { task in
          let (matrix, panel) = task.quotientAndRemainder(dividingBy: panels)
          packPanel(
            b + matrix * shape.batchStrideB, panel: panel, into: packed + task * panelSize)
        }
      } else if bPanels > 0 {
        // A group of B's rows per task, into every panel (`packRows`).
        let groups = (shape.k + packRowsPerTask - 1) / packRowsPerTask
        forEach(distinctB * groups) { task in
          let (matrix, group) = task.quotientAndRemainder(dividingBy: groups)
          packRows(
            b + matrix * shape.batchStrideB,
            rows: group * packRowsPerTask..<min(shape.k, (group + 1) * packRowsPerTask),
            into: packed + matrix * panels * panelSize)
        }
      }
      body(packB ? packed : nil)
    }
  }

  /// Runs `body` for every task of the product, on all threads when it is large: an item of
  /// the batch, the task's row tiles and its panels.
  ///
  /// Tasks are numbered row block by row block, or panel block by panel block
  /// (`panelMajor`).
  func forEachTask(_ body: (_ item: Int, _ tiles: Range<Int>, _ panels: Range<Int>) -> Void) {
    let blocking = rowBlocking
    let rowBlocks = blocking.blocks
    let (panelsPerTask, panelBlocks) = (self.panelsPerTask, self.panelBlocks)
    let panelMajor = self.panelMajor
    forEach(shape.batch * rowBlocks * panelBlocks) { task in
      let (item, block) = task.quotientAndRemainder(dividingBy: rowBlocks * panelBlocks)
      let (rowBlock, panelBlock) =
        panelMajor
        ? (block % rowBlocks, block / rowBlocks)
        : block.quotientAndRemainder(dividingBy: panelBlocks)
      body(
        item, tiles(ofBlock: rowBlock, of: blocking),
        panelBlock * panelsPerTask..<min(panels, (panelBlock + 1) * panelsPerTask))
    }
  }

  /// Whether the tasks are numbered panel block by panel block (`forEachTask`). The pool's
  /// threads take the two halves of the tasks (`parallelFor`), each in order, so
  /// consecutive tasks of a thread share either a block of A's rows, while all of B streams
  /// past, or a block of B's panels, while the rows of A stream past. Panel block by panel
  /// block:
  /// - the tasks of a packed transposed A spanning part of the panels (`panelsPerTask`:
  ///   half, when its rows make few blocks), so that each thread reads half of B's panels:
  ///   128³ `Aᵀ·B` on the AVX2 kernel ran at 135 to 144 GFLOP/s so against 117 to 132, 256³
  ///   at 208 to 231 against 198 to 233 (a program calling the kernel, 2 threads, medians of
  ///   7 × 200 products, in turns, on the AMD EPYC Zen 5); the AVX-512 kernel's 128³ within
  ///   its noise (264 to 330 against 292 to 319, `bench matmul`);
  /// - a product whose op(B) has at least `panelMajorBBytes`. Row block by row block, a
  ///   thread reads all of B once per block of `rowsPerTask` rows; panel block by panel
  ///   block, all of its A once per block of `columnsPerTask` columns, half the bytes, and
  ///   they matter once B no longer stays in the level-2 cache. GFLOP/s row by row, then
  ///   panel by panel (a program calling the kernel, 2 threads, medians of 9 runs, on the
  ///   Intel Xeon, Emerald Rapids), AVX-512 kernel: 1024³ `A·B` 368 to 371 and 403 to 414,
  ///   768³ 380 to 381 and 413 to 419, 512 × 1024 · 1024 × 1024 345 to 348 and 384 to 391,
  ///   4096 × 1024 · 1024 × 1024 391 to 395 and 418 to 425, 512³ `A·B` 372 to 384 and 383
  ///   to 392, `A·Bᵀ` 354 to 368 and 359 to 393; but 2048 × 512 · 512 × 512 419 to 422 and
  ///   408 to 411, and with a B of 192 KiB (2048 × 128 · 128 × 384) 405 to 413 and 371 to
  ///   379. AVX2 kernel: 1024³ 198 to 209 and 219 to 220, 768³ 205 to 209 and 219 to 220,
  ///   512³ 204 to 209 and 210 to 220, 2048 × 512 · 512 × 512 225 to 226 and 227 to 230.
  var panelMajor: Bool {
    panelBlocks > 1
      && (packA || shape.k * shape.n * MemoryLayout<Scalar>.stride >= panelMajorBBytes)
  }

  /// How the row tiles are grouped into tasks: as many tiles per task as fit
  /// `rowsPerTask`, but a large product is cut into at least `minimumTasks` tasks when it
  /// has the tiles, so that no thread waits long for the last one (an n = 128 product in
  /// three tasks kept two threads busy for two thirds of its time); a deep product as
  /// `deep` says; one block when each task packs its own panel of a transposed B
  /// (`packsPanelsInTasks`). A task of a packed transposed A spans every panel
  /// (`panelsPerTask`), so such tasks are few and large: their number is made a multiple of
  /// the thread count, and the tiles are shared out evenly among them (`sharesTilesEvenly`).
  var rowBlocking: (blocks: Int, tilesPerBlock: Int) {
    var blocks: Int
    if deep {
      // One block, or a multiple of the thread count, each at most `deepTilesPerTask` tiles.
      let rounds = (rowTiles + deepTilesPerTask * threads - 1) / (deepTilesPerTask * threads)
      blocks = deepSplitsPanels ? 1 : min(rowTiles, threads * rounds)
    } else {
      let panelBlocks = self.panelBlocks
      blocks = packsPanelsInTasks ? 1 : rowBlocksOfTilesPerTask
      if large && shape.batch * blocks * panelBlocks < minimumTasks {
        let wanted = (minimumTasks + shape.batch * panelBlocks - 1) / (shape.batch * panelBlocks)
        blocks = min(rowTiles, max(blocks, wanted))
      }
      if packA && panelBlocks == 1 && shape.batch == 1 {
        blocks = min(rowTiles, (blocks + threads - 1) / threads * threads)
      }
    }
    let tilesPerBlock = (rowTiles + blocks - 1) / blocks
    return sharesTilesEvenly
      ? (blocks, tilesPerBlock) : ((rowTiles + tilesPerBlock - 1) / tilesPerBlock, tilesPerBlock)
  }

  /// Whether the row tiles are shared out evenly among the blocks (`tiles(ofBlock:)`): in
  /// a product with a large transposed A, whose tasks are few and large, each spanning
  /// every panel, half of them, or a deep product's share (`panelsPerTask`).
  var sharesTilesEvenly: Bool { largeTransposedA }

  /// The row tiles of block `block`: an even share where `sharesTilesEvenly`, block sizes
  /// differing by one tile at most (cut into blocks of ⌈tiles ÷ blocks⌉, 256³ `Aᵀ·B` on the
  /// AVX2 kernel, 43 tiles, made seven tasks of six and one of one, so one of two threads
  /// computed at least 24 tiles where 21.5 would be even; a deep 1024³ `Aᵀ·B`, 171 tiles,
  /// nine of 18 and one of 9: shared evenly, 1.03 to 1.05 times as fast, 512 × 2048 · 2048 ×
  /// 128 1.01 to 1.03, AMD EPYC Zen 5, five pairs in turns); otherwise blocks of
  /// `tilesPerBlock`, the last one shorter (the tasks are many and small, and the bench
  /// model's in-place products ran 1 to 2% slower cut evenly, AVX2 kernel on the AMD EPYC
  /// Zen 5, in turns).
  func tiles(ofBlock block: Int, of blocking: (blocks: Int, tilesPerBlock: Int)) -> Range<Int> {
    if sharesTilesEvenly {
      return rowTiles * block / blocking.blocks..<rowTiles * (block + 1) / blocking.blocks
    }
    return block * blocking.tilesPerBlock..<min(rowTiles, (block + 1) * blocking.tilesPerBlock)
  }

  /// Runs the tasks on all threads for a large product, in order on this thread otherwise.
  func forEach(_ count: Int, _ body: (Int) -> Void) {
    if large { parallelFor(count, body) } else { for task in 0..<count { body(task) } }
  }

  /// Computes the C tiles `tiles × panels` of one item of the batch.
  ///
  /// The inner dimension is walked in passes of `passDepth`. A whole tile keeps its chains
  /// in the task's block buffer between passes and writes C in its last pass (in its only
  /// one, straight). An edge tile is computed in the block buffer and written to C at the
  /// end.
  func multiplyBlock(
    item: Int, tiles: Range<Int>, panels: Range<Int>, packedB: UnsafeMutablePointer<Scalar>?
  ) {
    let aItem = a + item * shape.batchStrideA
    let bItem = b + item * shape.batchStrideB
    let cItem = c + item * shape.batchStrideC
    let ldc = shape.leadingDimensionC
    let blockWidth = panels.count * panelWidth
    let blockSize = tiles.count * tileRows * blockWidth
    // Worked out once here, not for every tile.
    let (passDepth, packA) = (self.passDepth, self.packA)
    let passStripsSize = packA ? tiles.count * tileRows * min(shape.k, passDepth) : 0
    let slicePanel = packedB == nil && slicesPanels(tiles: tiles.count)
    let passPanelSize = slicePanel ? min(shape.k, passDepth) * panelWidth : 0
    // Room for a padded strip of A's last rows, the task's own copy of a panel of B, the
    // block of C, a transposed A's strips for one pass and one pass of a B panel.
    Scratch.with(
      Scalar.self, count: stripSize + panelSize + blockSize + passStripsSize + passPanelSize
    ) {
      scratch in
      let edgeStrip = scratch
      let taskPanel = scratch + stripSize
      let block = scratch + stripSize + panelSize
      let passStrips = block + blockSize
      let passPanel = passStrips + passStripsSize

      /// Whether C has all the tile's rows and all the columns the kernel writes (both
      /// vectors, or the first of a narrow panel).
      func whole(_ tile: Int, _ panel: Int) -> Bool {
        (tile + 1) * tileRows <= shape.m && columnsExist(panel)
      }
      /// The tile's place in the block buffer.
      func blockTile(_ tile: Int, _ panel: Int) -> UnsafeMutablePointer<Scalar> {
        block + (tile - tiles.lowerBound) * tileRows * blockWidth
          + (panel - panels.lowerBound) * panelWidth
      }
      if !packA && tiles.upperBound * tileRows > shape.m {
        packStrip(aItem, row: (tiles.upperBound - 1) * tileRows, into: edgeStrip)
      }
      // (n = 48 on AVX-512 is a whole panel and a narrow one of exactly one vector: read in
      // place, the mixture's 128 × 2048 · 2048 × 48 ran at 145 GFLOP/s, against 65 with a
      // padded copy of the 2,048-row panel per task; numpy 130 to 146. AMD EPYC Zen 4.)
      // The one panel a task reads from its own copy (`taskPanel`): its last when B's columns
      // end inside it (zero-padded), or its only one when each task packs its own panel of a
      // transposed B (`packsPanelsInTasks`).
      let last = panels.upperBound - 1
      let ownPanel =
        packedB == nil && (packsPanelsInTasks || !columnsExist(last)) ? last : nil
      if let ownPanel { packPanel(bItem, panel: ownPanel, into: taskPanel) }

      for start in stride(from: 0, to: shape.k, by: passDepth) {
        let depth = min(passDepth, shape.k - start)
        if packA {
          packTransposedA(aItem, tiles: tiles, steps: start..<start + depth, into: passStrips)
        }
        for panel in panels {
          let (bp, panelRowStride) = columnsOfB(
            panel, item: item, packedB: packedB, ownPanel: ownPanel, taskPanel: taskPanel)
          // The last panel, when one vector covers its columns, runs the narrow tile: half
          // the multiply-adds (n = 48 on AVX-512 took longer than n = 64 without it).
          let narrow = columnsLeft(panel) <= panelWidth / 2
          var (b, bRowStride) = (bp + start * panelRowStride, panelRowStride)
          if slicePanel && bRowStride != panelWidth {
            let read = narrow ? panelWidth / 2 : panelWidth
            for p in 0..<depth {
              copyPanelRow(from: b + p * bRowStride, to: passPanel + p * panelWidth, count: read)
            }
            (b, bRowStride) = (UnsafePointer(passPanel), panelWidth)
          }
          for tile in tiles {
            let (rows, aStrides) = rowsOfA(
              tile, tiles: tiles, item: item, step: start, depth: depth,
              passStrips: packA ? passStrips : nil, edgeStrip: edgeStrip)
            let cTile = cItem + tile * tileRows * ldc + panel * panelWidth
            let partials = start > 0 ? (UnsafePointer(blockTile(tile, panel)), blockWidth) : nil
            if start + depth == shape.k && whole(tile, panel) {
              // C is written when the chains end; its lines are fetched while the tile
              // computes (see `prefetchForWriting`).
              if shape.k >= prefetchDepth {
                prefetchTileForWriting(cTile, columns: narrow ? panelWidth / 2 : panelWidth)
              }
              Kernel.multiply(
                depth: depth, a: rows, aStrides: aStrides, b: b, bRowStride: bRowStride,
                c: cTile, cRowStride: ldc, accumulate: accumulate, partials: partials,
                narrow: narrow)
            } else {
              Kernel.multiply(
                depth: depth, a: rows, aStrides: aStrides, b: b, bRowStride: bRowStride,
                c: blockTile(tile, panel), cRowStride: blockWidth, accumulate: false,
                partials: partials, narrow: narrow)
            }
          }
        }
      }
      for panel in panels {
        for tile in tiles where !whole(tile, panel) {
          writeOut(
            blockTile(tile, panel), rowStride: blockWidth,
            rows: min(tileRows, shape.m - tile * tileRows),
            columns: min(panelWidth, shape.n - panel * panelWidth),
            into: cItem + tile * tileRows * ldc + panel * panelWidth)
        }
      }
    }
  }

  /// Starts fetching the cache lines of the C tile at `c` (`tileRows` rows of one panel),
  /// which the kernel writes when its chains end.
  func prefetchTileForWriting(_ c: UnsafeMutablePointer<Scalar>, columns: Int) {
    for row in 0..<tileRows {
      for column in stride(from: 0, to: columns, by: lineLength) {
        prefetchForWriting(c + row * shape.leadingDimensionC + column)
      }
    }
  }

  /// Where tile `tile`'s rows of op(A) are read from at step `step` of the inner
  /// dimension, and their strides: the task's `passStrips` (a transposed A, packed `depth`
  /// steps at a time for the task's `tiles`; nil when A is not packed), its padded
  /// `edgeStrip` for the last rows, or A itself.
  func rowsOfA(
    _ tile: Int, tiles: Range<Int>, item: Int, step: Int, depth: Int,
    passStrips: UnsafeMutablePointer<Scalar>?, edgeStrip: UnsafeMutablePointer<Scalar>
  ) -> (UnsafePointer<Scalar>, (row: Int, column: Int)) {
    if let passStrips {
      return (
        UnsafePointer(passStrips + (tile - tiles.lowerBound) * tileRows * depth), (1, tileRows)
      )
    }
    let row = tile * tileRows
    if row + tileRows > shape.m {
      return (UnsafePointer(edgeStrip + step * tileRows), (1, tileRows))
    }
    return (
      a + item * shape.batchStrideA + row * shape.aRowStride + step * shape.aColumnStride,
      (shape.aRowStride, shape.aColumnStride)
    )
  }

  /// Where panel `panel`'s columns of op(B) are read from, and their row stride: the
  /// packed panels, the task's own copy `taskPanel` of panel `ownPanel`, or B itself.
  func columnsOfB(
    _ panel: Int, item: Int, packedB: UnsafeMutablePointer<Scalar>?, ownPanel: Int?,
    taskPanel: UnsafeMutablePointer<Scalar>
  ) -> (UnsafePointer<Scalar>, Int) {
    if let packedB {
      let offset = ((distinctB == 1 ? 0 : item) * panels + panel) * panelSize
      return (UnsafePointer(packedB + offset), panelWidth)
    }
    if panel == ownPanel { return (UnsafePointer(taskPanel), panelWidth) }
    return (b + item * shape.batchStrideB + panel * panelWidth, shape.bRowStride)
  }

  /// Writes (or, accumulating, adds) `rows × columns` computed values into C at `c`.
  func writeOut(
    _ values: UnsafeMutablePointer<Scalar>, rowStride: Int, rows: Int, columns: Int,
    into c: UnsafeMutablePointer<Scalar>
  ) {
    let ldc = shape.leadingDimensionC
    // A row at a time, the choice outside the loops, so that the compiler vectorizes them
    // (2048 × 6 · 6 × 48 and 2048 × 128 · 128 × 48, whose last panel is written so: 1.5 to
    // 1.8 and 1.05 to 1.09 times as fast as one loop choosing per element, AVX-512 kernel
    // on the AMD EPYC Zen 4, timed in turns).
    for r in 0..<rows {
      let source = values + r * rowStride
      let target = c + r * ldc
      if accumulate {
        for j in 0..<columns { target[j] += source[j] }
      } else {
        for j in 0..<columns { target[j] = source[j] }
      }
    }
  }

  /// Copies columns `panel * panelWidth ..< (panel + 1) * panelWidth` of `op(B)` into
  /// `packed`, row after row, with zeros past B's last column: a transposed B's panels, and
  /// the padded last panel of a B read in place.
  func packPanel(_ b: UnsafePointer<Scalar>, panel: Int, into packed: UnsafeMutablePointer<Scalar>)
  {
    let first = panel * panelWidth
    let columns = min(panelWidth, shape.n - first)
    if columns < panelWidth { packed.update(repeating: 0, count: panelSize) }
    if shape.transposeB {
      // B is stored [n, k]: column j of op(B) is row j of storage.
      transposeInBlocks(
        b + first * shape.leadingDimensionB, rowStride: shape.leadingDimensionB,
        rows: columns, columns: shape.k, into: packed, targetRowStride: panelWidth)
    } else {
      for p in 0..<shape.k {
        copyPanelRow(
          from: b + p * shape.leadingDimensionB + first, to: packed + p * panelWidth,
          count: columns)
      }
    }
  }

  /// Copies rows `rows` of a B stored `[k, n]` (not transposed) into the packed panels at
  /// `packed`, each row's columns into every panel, with zeros past B's last column.
  func packRows(
    _ b: UnsafePointer<Scalar>, rows: Range<Int>, into packed: UnsafeMutablePointer<Scalar>
  ) {
    let lastColumns = shape.n - (panels - 1) * panelWidth
    for p in rows {
      let source = b + p * shape.leadingDimensionB
      var target = packed + p * panelWidth
      for panel in 0..<panels - 1 {
        copyPanelRow(from: source + panel * panelWidth, to: target, count: panelWidth)
        target += panelSize
      }
      copyPanelRow(from: source + (panels - 1) * panelWidth, to: target, count: lastColumns)
      if lastColumns < panelWidth {
        (target + lastColumns).update(repeating: 0, count: panelWidth - lastColumns)
      }
    }
  }

  /// Copies `count` scalars of a panel's row: one or two whole vectors by inline vector
  /// moves, anything else by `update` (a library call for each row of a panel was 6% of
  /// the samples of the AVX2 kernel's 384 × 2048 · 2048 × 128; the products that copy B's
  /// rows so ran 4 to 10% faster, timed in turns on the AMD EPYC Zen 3).
  @inline(__always)
  func copyPanelRow(
    from source: UnsafePointer<Scalar>, to target: UnsafeMutablePointer<Scalar>, count: Int
  ) {
    typealias Vector = Kernel.Vector
    let (from, to) = (UnsafeRawPointer(source), UnsafeMutableRawPointer(target))
    let half = MemoryLayout<Vector>.stride
    if count == 2 * Vector.scalarCount {
      to.storeBytes(of: from.loadUnaligned(as: Vector.self), as: Vector.self)
      to.storeBytes(
        of: from.loadUnaligned(fromByteOffset: half, as: Vector.self), toByteOffset: half,
        as: Vector.self)
    } else if count == Vector.scalarCount {
      to.storeBytes(of: from.loadUnaligned(as: Vector.self), as: Vector.self)
    } else {
      target.update(from: source, count: count)
    }
  }

  /// Copies rows `row ..< row + tileRows` of `op(A)` into `strip` as `k` groups of
  /// `tileRows` scalars, with zeros for rows past A's last.
  /// (A read in place; a packed transposed A is packed pass by pass by `packTransposedA`.)
  func packStrip(_ a: UnsafePointer<Scalar>, row: Int, into strip: UnsafeMutablePointer<Scalar>) {
    let rows = min(tileRows, shape.m - row)
    if rows < tileRows { strip.update(repeating: 0, count: stripSize) }
    for r in 0..<rows {
      let source = a + (row + r) * shape.aRowStride
      for p in 0..<shape.k { strip[p * tileRows + r] = source[p * shape.aColumnStride] }
    }
  }

  /// Copies steps `steps` of the rows of `tiles` of a transposed A (stored `[k, m]`) into
  /// `strips`, one strip of `steps.count × tileRows` scalars per tile, with zeros for rows
  /// past A's last.
  func packTransposedA(
    _ a: UnsafePointer<Scalar>, tiles: Range<Int>, steps: Range<Int>,
    into strips: UnsafeMutablePointer<Scalar>
  ) {
    // A tile's numbers at one step are contiguous in A: one copy of a constant size, which
    // the compiler makes a few vector moves (5 to 10% faster than a loop over the rows,
    // AVX2 kernel on the AMD EPYC Zen 4 at m = 2048, k = 128, n = 128 and at the weight
    // gradient's k = 2048).
    let bytes = tileRows * MemoryLayout<Scalar>.stride
    let fetchesAhead = fetchesRowsOfAAhead
    let (first, last) = (tiles.lowerBound * tileRows, min(shape.m, tiles.upperBound * tileRows))
    for p in steps {
      let source = a + p * shape.leadingDimensionA
      if fetchesAhead && p + packAheadRows < shape.k {
        // Every line of the tiles' part of that row: a line's worth of columns apart, and
        // the last column's (which the stride steps over when the part starts mid-line).
        let ahead = source + packAheadRows * shape.leadingDimensionA
        for column in stride(from: first, to: last, by: lineLength) {
          prefetchForReading(ahead + column)
        }
        prefetchForReading(ahead + last - 1)
      }
      var target = strips + (p - steps.lowerBound) * tileRows
      for tile in tiles {
        let row = tile * tileRows
        if row + tileRows <= shape.m {
          UnsafeMutableRawPointer(target).copyMemory(from: source + row, byteCount: bytes)
        } else {
          for r in 0..<tileRows { target[r] = row + r < shape.m ? source[row + r] : 0 }
        }
        target += tileRows * steps.count
      }
    }
  }
}

/// Writes the transpose of the `rows × columns` matrix at `source` (rows `rowStride` apart)
/// to `target` (rows `targetRowStride` apart): `target[c][r] = source[r][c]`.
///
/// It copies 8 × 8 blocks, so that both the rows read and the rows written stay in a few
/// cache lines, a whole block in vectors (`transposeBlock`: A·Bᵀ at 64³, 128³ and 256³ ran
/// 1.06 to 1.07, 1.08 to 1.16 and 1.03 to 1.07 times as fast as with a number at a time, AMD
/// EPYC Zen 3, AVX2 kernel, in turns), a number at a time at the edges. It packs a
/// transposed B's panels (`packPanel`) and attention's Kᵀ and Vᵀ.
@inline(__always)
func transposeInBlocks<Scalar: SIMDScalar>(
  _ source: UnsafePointer<Scalar>, rowStride: Int, rows: Int, columns: Int,
  into target: UnsafeMutablePointer<Scalar>, targetRowStride: Int
) {
  for r0 in stride(from: 0, to: rows, by: 8) {
    let blockRows = min(8, rows - r0)
    for c0 in stride(from: 0, to: columns, by: 8) {
      let blockColumns = min(8, columns - c0)
      let from = source + r0 * rowStride + c0
      let to = target + c0 * targetRowStride + r0
      if blockRows == 8 && blockColumns == 8 {
        transposeBlock(from, rowStride: rowStride, into: to, targetRowStride: targetRowStride)
      } else {
        for r in 0..<blockRows {
          for c in 0..<blockColumns { to[c * targetRowStride + r] = from[r * rowStride + c] }
        }
      }
    }
  }
}

/// Writes the transpose of the 8 × 8 block at `source`, whose rows are `rowStride` apart,
/// to `target`, whose rows are `targetRowStride` apart, in vectors.
///
/// Row `i`, column `j` of the block is number `8i + j` of its 64; the transpose puts it at
/// `8j + i`: the six bits of the index rotated by three. Taking the even numbers of each
/// pair of rows, then the odd ones (`evenHalf`, `oddHalf`), rotates them by one, so three
/// such rounds transpose the block; the compiler makes each round shuffles (Float on AVX2:
/// 44 shuffle instructions for the block besides its loads and stores, against 128 moves of
/// one number).
@inline(__always)
func transposeBlock<Scalar: SIMDScalar>(
  _ source: UnsafePointer<Scalar>, rowStride: Int,
  into target: UnsafeMutablePointer<Scalar>, targetRowStride: Int
) {
  func row(_ i: Int) -> SIMD8<Scalar> {
    UnsafeRawPointer(source + i * rowStride).loadUnaligned(as: SIMD8<Scalar>.self)
  }
  var rows = (row(0), row(1), row(2), row(3), row(4), row(5), row(6), row(7))
  for _ in 0..<3 {
    let pairs = (
      SIMD16(lowHalf: rows.0, highHalf: rows.1), SIMD16(lowHalf: rows.2, highHalf: rows.3),
      SIMD16(lowHalf: rows.4, highHalf: rows.5), SIMD16(lowHalf: rows.6, highHalf: rows.7)
    )
    rows = (
      pairs.0.evenHalf, pairs.1.evenHalf, pairs.2.evenHalf, pairs.3.evenHalf,
      pairs.0.oddHalf, pairs.1.oddHalf, pairs.2.oddHalf, pairs.3.oddHalf
    )
  }
  func store(_ vector: SIMD8<Scalar>, _ i: Int) {
    UnsafeMutableRawPointer(target + i * targetRowStride).storeBytes(
      of: vector, as: SIMD8<Scalar>.self)
  }
  store(rows.0, 0)
  store(rows.1, 1)
  store(rows.2, 2)
  store(rows.3, 3)
  store(rows.4, 4)
  store(rows.5, 5)
  store(rows.6, 6)
  store(rows.7, 7)
}

// MARK: - The microkernels
//
// They live in this file, beside their caller, so that a build without whole-module
// optimization (`swift test` builds debug) still specializes them for each vector type.
// Each is written out row by row: the compiler keeps accumulators in registers when they
// are separate variables, and Swift has no fixed-size array of them short of `InlineArray`
// (macOS 26 and later).

/// A register tile: computes `rows × 2·Vector.scalarCount` elements of C over the whole
/// inner dimension.
///
/// `A[r, p]` is at `a[r * aStrides.row + p * aStrides.column]`; row `p` of the B panel is
/// two vectors at `b + p * bRowStride`; row `r` of the C tile starts at `c + r * cRowStride`.
/// With `partials`, the chains start from the partial sums there instead of zero: a long
/// inner dimension is walked in slices, and the last slice may read them from a buffer and
/// write C. With `accumulate`, the results are added to C.
/// With `narrow`, only the first vector of columns is computed, read and written (the last
/// panel of a product whose columns end within it).
protocol Microkernel {
  associatedtype Vector: SIMD where Vector.Scalar: BinaryFloatingPoint & SIMDScalar
  static var rows: Int { get }
  /// `multiply`, with row `r` of A at `a + rows(r)` and step `p` at `p * aColumnStride`.
  static func tile<Rows: RowOffsets>(
    _ depth: Int, _ a: UnsafePointer<Vector.Scalar>, _ rows: Rows, _ aColumnStride: Int,
    _ b: UnsafePointer<Vector.Scalar>, _ bRowStride: Int, _ c: UnsafeMutablePointer<Vector.Scalar>,
    _ cRowStride: Int, _ accumulate: Bool, _ partials: Partials<Vector.Scalar>?, _ narrow: Bool)
}

/// Where a tile's partial sums are, to resume its chains: row `r` at `start + r * rowStride`.
typealias Partials<Scalar> = (start: UnsafePointer<Scalar>, rowStride: Int)

extension Microkernel {
  /// The tile, its loop specialized for where A's rows are: at constant offsets in a packed
  /// strip (`aStrides.row == 1`), a run-time stride apart in place.
  @inline(never)
  static func multiply(
    depth: Int, a: UnsafePointer<Vector.Scalar>, aStrides: (row: Int, column: Int),
    b: UnsafePointer<Vector.Scalar>, bRowStride: Int,
    c: UnsafeMutablePointer<Vector.Scalar>, cRowStride: Int, accumulate: Bool,
    partials: Partials<Vector.Scalar>? = nil, narrow: Bool
  ) {
    if aStrides.row == 1 {
      tile(
        depth, a, AdjacentRows(), aStrides.column, b, bRowStride, c, cRowStride, accumulate,
        partials, narrow)
    } else {
      tile(
        depth, a, StridedRows(stride: aStrides.row), aStrides.column, b, bRowStride, c,
        cRowStride, accumulate, partials, narrow)
    }
  }
}

extension MatmulKernel {
  /// `Microkernel.multiply` on this case's register tile, writing C: for kernels outside
  /// this file (attention's). A generic call from another file is not specialized in a
  /// debug build, which compiles the files one by one, and there the tile ran its loop
  /// through the protocol's witnesses (the test suite took twice as long, 216.5 s against
  /// 100.7, AMD EPYC Zen 5); this function is specialized here, beside the tiles.
  @_specialize(where T == Float)
  @_specialize(where T == Double)
  func multiplyTile<T: KernelScalar>(
    depth: Int, a: UnsafePointer<T>, aStrides: (row: Int, column: Int), b: UnsafePointer<T>,
    bRowStride: Int, c: UnsafeMutablePointer<T>, cRowStride: Int, narrow: Bool
  ) {
    func run<Kernel: Microkernel>(_: Kernel.Type) where Kernel.Vector.Scalar == T {
      Kernel.multiply(
        depth: depth, a: a, aStrides: aStrides, b: b, bRowStride: bRowStride, c: c,
        cRowStride: cRowStride, accumulate: false, narrow: narrow)
    }
    switch self {
    case .avx512: run(EightRowKernel<T.Vector512>.self)
    case .avx2: run(SixRowKernel<T.Vector256>.self)
    case .neon: run(TwelveRowKernel<T.Vector128>.self)
    case .portable: run(SixRowKernel<T.Vector128>.self)
    }
  }

  /// The rows of this case's tile, and the columns of its panel (two vectors), for `T`.
  func tile<T: KernelScalar>(_: T.Type) -> (rows: Int, panelWidth: Int) {
    switch self {
    case .avx512: (EightRowKernel<T.Vector512>.rows, 2 * T.Vector512.scalarCount)
    case .avx2: (SixRowKernel<T.Vector256>.rows, 2 * T.Vector256.scalarCount)
    case .neon: (TwelveRowKernel<T.Vector128>.rows, 2 * T.Vector128.scalarCount)
    case .portable: (SixRowKernel<T.Vector128>.rows, 2 * T.Vector128.scalarCount)
    }
  }
}

/// Where row `r` of a tile's A is, from its first: `r` in a packed strip, `r · stride` in
/// place. A packed strip's offsets are constants, so each step reads its numbers of A at
/// fixed displacements from one pointer; with a stride known only at run time the compiler
/// walks from row to row, one dependent addition per row and step: 6 per step of the AVX2
/// tile, whose 12 multiply-adds take 6 cycles, and 12 per step of the NEON tile, whose 24
/// take 6 on an Apple M1. With the constants, transposed-A products on the AVX2 kernel ran
/// 0 to 14% faster (medians, timed in turns on the AMD EPYC Zen 4), the AVX-512 kernel's
/// the same (0.99 to 1.04); compiled for the M1, the NEON tile's loop went from 40
/// instructions with 12 chained address updates to 36 with one. In place, the wide loop's
/// multiply-adds take as long as its chain, but the narrow loop has half as many, so there
/// each row keeps a pointer of its own, moved on by an addition that waits for no other:
/// the routers' 2048 × 128 · (6 × 128)ᵀ ran at 88 to 91 GFLOP/s against 66 to 69 on the
/// AVX-512 kernel (`bench matmul --shape`, two runs each), 0.78 to 0.83 of the time on the
/// AVX2 kernel, and the experts' 2048 × 128 · (48 × 128)ᵀ, whose last panel is narrow, at
/// 324 to 326 against 277 to 287; products without a narrow panel did not change (0.96 to
/// 1.04; Intel Xeon, Emerald Rapids, 2 threads).
protocol RowOffsets {
  func callAsFunction(_ row: Int) -> Int
}

/// The rows of a packed strip: adjacent numbers.
struct AdjacentRows: RowOffsets {
  @inline(__always) func callAsFunction(_ row: Int) -> Int { row }
}

/// The rows of A read in place: a row stride apart.
struct StridedRows: RowOffsets {
  let stride: Int
  @inline(__always) func callAsFunction(_ row: Int) -> Int { row * stride }
}

/// One row of a tile's A, walked step by step through a pointer of its own: the narrow
/// loop's way of reading A (`RowOffsets` says why).
struct RowOfA<Scalar> {
  var pointer: UnsafePointer<Scalar>
  let step: Int

  init(_ first: UnsafePointer<Scalar>, step: Int) { (pointer, self.step) = (first, step) }

  /// The row's number at this step, moving on to the next.
  @inline(__always) mutating func next() -> Scalar {
    defer { pointer += step }
    return pointer.pointee
  }
}

/// One row of a tile: two vectors of accumulators.
struct TileRow<V: SIMD> where V.Scalar: BinaryFloatingPoint {
  var left: V
  var right: V

  /// Zero, or row `row` of the partial sums (the first vector only, if narrow).
  @inline(__always) init(_ partials: Partials<V.Scalar>?, row: Int, narrow: Bool) {
    if let partials {
      let p = UnsafeRawPointer(partials.start + row * partials.rowStride)
      left = p.loadUnaligned(as: V.self)
      right = narrow ? V() : p.loadUnaligned(fromByteOffset: MemoryLayout<V>.stride, as: V.self)
    } else {
      (left, right) = (V(), V())
    }
  }

  /// `row += a · (b0, b1)`, two fused multiply-adds of one broadcast number of A.
  @inline(__always) mutating func add(_ a: V.Scalar, _ b0: V, _ b1: V) {
    let x = V(repeating: a)
    left.addProduct(x, b0)
    right.addProduct(x, b1)
  }

  /// `row.left += a · b0`, the narrow tile's one fused multiply-add.
  @inline(__always) mutating func add(_ a: V.Scalar, _ b0: V) {
    left.addProduct(V(repeating: a), b0)
  }

  /// Writes (or adds) the row to C at `c` (the first vector only, if narrow).
  @inline(__always) func store(
    _ c: UnsafeMutablePointer<V.Scalar>, accumulate: Bool, narrow: Bool
  ) {
    let p = UnsafeMutableRawPointer(c)
    let half = MemoryLayout<V>.stride
    p.storeBytes(of: accumulate ? p.loadUnaligned(as: V.self) + left : left, as: V.self)
    if narrow { return }
    p.storeBytes(
      of: accumulate ? p.loadUnaligned(fromByteOffset: half, as: V.self) + right : right,
      toByteOffset: half, as: V.self)
  }
}

/// The 6-row tile (AVX2 and portable): 12 accumulators.
enum SixRowKernel<Vector: SIMD>: Microkernel
where Vector.Scalar: BinaryFloatingPoint & SIMDScalar {
  static var rows: Int { 6 }

  @inline(__always)
  static func tile<Rows: RowOffsets>(
    _ depth: Int, _ a: UnsafePointer<Vector.Scalar>, _ rows: Rows, _ aColumnStride: Int,
    _ b: UnsafePointer<Vector.Scalar>, _ bRowStride: Int, _ c: UnsafeMutablePointer<Vector.Scalar>,
    _ cRowStride: Int, _ accumulate: Bool, _ partials: Partials<Vector.Scalar>?, _ narrow: Bool
  ) {
    var c0 = TileRow<Vector>(partials, row: 0, narrow: narrow)
    var c1 = TileRow<Vector>(partials, row: 1, narrow: narrow)
    var c2 = TileRow<Vector>(partials, row: 2, narrow: narrow)
    var c3 = TileRow<Vector>(partials, row: 3, narrow: narrow)
    var c4 = TileRow<Vector>(partials, row: 4, narrow: narrow)
    var c5 = TileRow<Vector>(partials, row: 5, narrow: narrow)
    var ap = a
    var bp = UnsafeRawPointer(b)
    let bStep = bRowStride * MemoryLayout<Vector.Scalar>.stride
    let half = MemoryLayout<Vector>.stride
    if narrow {
      // Each row of A walked by a pointer of its own (`RowOfA`).
      func row(_ r: Int) -> RowOfA<Vector.Scalar> { RowOfA(ap + rows(r), step: aColumnStride) }
      var (a0, a1, a2) = (row(0), row(1), row(2))
      var (a3, a4, a5) = (row(3), row(4), row(5))
      for _ in 0..<depth {
        let b0 = bp.loadUnaligned(as: Vector.self)
        c0.add(a0.next(), b0)
        c1.add(a1.next(), b0)
        c2.add(a2.next(), b0)
        c3.add(a3.next(), b0)
        c4.add(a4.next(), b0)
        c5.add(a5.next(), b0)
        bp += bStep
      }
    } else {
      for _ in 0..<depth {
        let b0 = bp.loadUnaligned(as: Vector.self)
        let b1 = bp.loadUnaligned(fromByteOffset: half, as: Vector.self)
        c0.add(ap[0], b0, b1)
        c1.add(ap[rows(1)], b0, b1)
        c2.add(ap[rows(2)], b0, b1)
        c3.add(ap[rows(3)], b0, b1)
        c4.add(ap[rows(4)], b0, b1)
        c5.add(ap[rows(5)], b0, b1)
        ap += aColumnStride
        bp += bStep
      }
    }
    c0.store(c, accumulate: accumulate, narrow: narrow)
    c1.store(c + cRowStride, accumulate: accumulate, narrow: narrow)
    c2.store(c + 2 * cRowStride, accumulate: accumulate, narrow: narrow)
    c3.store(c + 3 * cRowStride, accumulate: accumulate, narrow: narrow)
    c4.store(c + 4 * cRowStride, accumulate: accumulate, narrow: narrow)
    c5.store(c + 5 * cRowStride, accumulate: accumulate, narrow: narrow)
  }
}

/// The 8-row tile (AVX-512): 16 accumulators.
enum EightRowKernel<Vector: SIMD>: Microkernel
where Vector.Scalar: BinaryFloatingPoint & SIMDScalar {
  static var rows: Int { 8 }

  @inline(__always)
  static func tile<Rows: RowOffsets>(
    _ depth: Int, _ a: UnsafePointer<Vector.Scalar>, _ rows: Rows, _ aColumnStride: Int,
    _ b: UnsafePointer<Vector.Scalar>, _ bRowStride: Int, _ c: UnsafeMutablePointer<Vector.Scalar>,
    _ cRowStride: Int, _ accumulate: Bool, _ partials: Partials<Vector.Scalar>?, _ narrow: Bool
  ) {
    var c0 = TileRow<Vector>(partials, row: 0, narrow: narrow)
    var c1 = TileRow<Vector>(partials, row: 1, narrow: narrow)
    var c2 = TileRow<Vector>(partials, row: 2, narrow: narrow)
    var c3 = TileRow<Vector>(partials, row: 3, narrow: narrow)
    var c4 = TileRow<Vector>(partials, row: 4, narrow: narrow)
    var c5 = TileRow<Vector>(partials, row: 5, narrow: narrow)
    var c6 = TileRow<Vector>(partials, row: 6, narrow: narrow)
    var c7 = TileRow<Vector>(partials, row: 7, narrow: narrow)
    var ap = a
    var bp = UnsafeRawPointer(b)
    let bStep = bRowStride * MemoryLayout<Vector.Scalar>.stride
    let half = MemoryLayout<Vector>.stride
    if narrow {
      // Each row of A walked by a pointer of its own (`RowOfA`).
      func row(_ r: Int) -> RowOfA<Vector.Scalar> { RowOfA(ap + rows(r), step: aColumnStride) }
      var (a0, a1, a2, a3) = (row(0), row(1), row(2), row(3))
      var (a4, a5, a6, a7) = (row(4), row(5), row(6), row(7))
      for _ in 0..<depth {
        let b0 = bp.loadUnaligned(as: Vector.self)
        c0.add(a0.next(), b0)
        c1.add(a1.next(), b0)
        c2.add(a2.next(), b0)
        c3.add(a3.next(), b0)
        c4.add(a4.next(), b0)
        c5.add(a5.next(), b0)
        c6.add(a6.next(), b0)
        c7.add(a7.next(), b0)
        bp += bStep
      }
    } else {
      for _ in 0..<depth {
        let b0 = bp.loadUnaligned(as: Vector.self)
        let b1 = bp.loadUnaligned(fromByteOffset: half, as: Vector.self)
        c0.add(ap[0], b0, b1)
        c1.add(ap[rows(1)], b0, b1)
        c2.add(ap[rows(2)], b0, b1)
        c3.add(ap[rows(3)], b0, b1)
        c4.add(ap[rows(4)], b0, b1)
        c5.add(ap[rows(5)], b0, b1)
        c6.add(ap[rows(6)], b0, b1)
        c7.add(ap[rows(7)], b0, b1)
        ap += aColumnStride
        bp += bStep
      }
    }
    c0.store(c, accumulate: accumulate, narrow: narrow)
    c1.store(c + cRowStride, accumulate: accumulate, narrow: narrow)
    c2.store(c + 2 * cRowStride, accumulate: accumulate, narrow: narrow)
    c3.store(c + 3 * cRowStride, accumulate: accumulate, narrow: narrow)
    c4.store(c + 4 * cRowStride, accumulate: accumulate, narrow: narrow)
    c5.store(c + 5 * cRowStride, accumulate: accumulate, narrow: narrow)
    c6.store(c + 6 * cRowStride, accumulate: accumulate, narrow: narrow)
    c7.store(c + 7 * cRowStride, accumulate: accumulate, narrow: narrow)
  }
}

/// The 12-row tile (NEON): 24 accumulators.
enum TwelveRowKernel<Vector: SIMD>: Microkernel
where Vector.Scalar: BinaryFloatingPoint & SIMDScalar {
  static var rows: Int { 12 }

  @inline(__always)
  static func tile<Rows: RowOffsets>(
    _ depth: Int, _ a: UnsafePointer<Vector.Scalar>, _ rows: Rows, _ aColumnStride: Int,
    _ b: UnsafePointer<Vector.Scalar>, _ bRowStride: Int, _ c: UnsafeMutablePointer<Vector.Scalar>,
    _ cRowStride: Int, _ accumulate: Bool, _ partials: Partials<Vector.Scalar>?, _ narrow: Bool
  ) {
    var c0 = TileRow<Vector>(partials, row: 0, narrow: narrow)
    var c1 = TileRow<Vector>(partials, row: 1, narrow: narrow)
    var c2 = TileRow<Vector>(partials, row: 2, narrow: narrow)
    var c3 = TileRow<Vector>(partials, row: 3, narrow: narrow)
    var c4 = TileRow<Vector>(partials, row: 4, narrow: narrow)
    var c5 = TileRow<Vector>(partials, row: 5, narrow: narrow)
    var c6 = TileRow<Vector>(partials, row: 6, narrow: narrow)
    var c7 = TileRow<Vector>(partials, row: 7, narrow: narrow)
    var c8 = TileRow<Vector>(partials, row: 8, narrow: narrow)
    var c9 = TileRow<Vector>(partials, row: 9, narrow: narrow)
    var c10 = TileRow<Vector>(partials, row: 10, narrow: narrow)
    var c11 = TileRow<Vector>(partials, row: 11, narrow: narrow)
    var ap = a
    var bp = UnsafeRawPointer(b)
    let bStep = bRowStride * MemoryLayout<Vector.Scalar>.stride
    let half = MemoryLayout<Vector>.stride
    if narrow {
      // Each row of A walked by a pointer of its own (`RowOfA`).
      func row(_ r: Int) -> RowOfA<Vector.Scalar> { RowOfA(ap + rows(r), step: aColumnStride) }
      var (a0, a1, a2, a3) = (row(0), row(1), row(2), row(3))
      var (a4, a5, a6, a7) = (row(4), row(5), row(6), row(7))
      var (a8, a9, a10, a11) = (row(8), row(9), row(10), row(11))
      for _ in 0..<depth {
        let b0 = bp.loadUnaligned(as: Vector.self)
        c0.add(a0.next(), b0)
        c1.add(a1.next(), b0)
        c2.add(a2.next(), b0)
        c3.add(a3.next(), b0)
        c4.add(a4.next(), b0)
        c5.add(a5.next(), b0)
        c6.add(a6.next(), b0)
        c7.add(a7.next(), b0)
        c8.add(a8.next(), b0)
        c9.add(a9.next(), b0)
        c10.add(a10.next(), b0)
        c11.add(a11.next(), b0)
        bp += bStep
      }
    } else {
      for _ in 0..<depth {
        let b0 = bp.loadUnaligned(as: Vector.self)
        let b1 = bp.loadUnaligned(fromByteOffset: half, as: Vector.self)
        c0.add(ap[0], b0, b1)
        c1.add(ap[rows(1)], b0, b1)
        c2.add(ap[rows(2)], b0, b1)
        c3.add(ap[rows(3)], b0, b1)
        c4.add(ap[rows(4)], b0, b1)
        c5.add(ap[rows(5)], b0, b1)
        c6.add(ap[rows(6)], b0, b1)
        c7.add(ap[rows(7)], b0, b1)
        c8.add(ap[rows(8)], b0, b1)
        c9.add(ap[rows(9)], b0, b1)
        c10.add(ap[rows(10)], b0, b1)
        c11.add(ap[rows(11)], b0, b1)
        ap += aColumnStride
        bp += bStep
      }
    }
    c0.store(c, accumulate: accumulate, narrow: narrow)
    c1.store(c + cRowStride, accumulate: accumulate, narrow: narrow)
    c2.store(c + 2 * cRowStride, accumulate: accumulate, narrow: narrow)
    c3.store(c + 3 * cRowStride, accumulate: accumulate, narrow: narrow)
    c4.store(c + 4 * cRowStride, accumulate: accumulate, narrow: narrow)
    c5.store(c + 5 * cRowStride, accumulate: accumulate, narrow: narrow)
    c6.store(c + 6 * cRowStride, accumulate: accumulate, narrow: narrow)
    c7.store(c + 7 * cRowStride, accumulate: accumulate, narrow: narrow)
    c8.store(c + 8 * cRowStride, accumulate: accumulate, narrow: narrow)
    c9.store(c + 9 * cRowStride, accumulate: accumulate, narrow: narrow)
    c10.store(c + 10 * cRowStride, accumulate: accumulate, narrow: narrow)
    c11.store(c + 11 * cRowStride, accumulate: accumulate, narrow: narrow)
  }
}
