import Foundation
import Testing

@testable import Kernels

/// A deterministic pseudo-random fill in [-1, 1), so failures reproduce.
func fill<T: BinaryFloatingPoint>(_ count: Int, seed: UInt64) -> [T] {
  var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
  return (0..<count).map { _ in
    state ^= state << 13
    state ^= state >> 7
    state ^= state << 17
    return T(Double(state >> 11) / Double(1 << 53) * 2 - 1)
  }
}

/// Largest difference from the reference, relative to the reference's largest magnitude.
func relativeDifference<T: BinaryFloatingPoint>(_ x: [T], _ reference: [T]) -> Double {
  var worst = 0.0
  var scale = 0.0
  for (a, b) in zip(x, reference) {
    worst = Swift.max(worst, abs(Double(a) - Double(b)))
    scale = Swift.max(scale, abs(Double(b)))
  }
  return scale == 0 ? worst : worst / scale
}

protocol MatmulTestScalar: BinaryFloatingPoint {
  static var tolerance: Double { get }
  static func fast(
    _ a: [Self], _ b: [Self], _ c: inout [Self], _ shape: MatmulShape, _ accumulate: Bool)
  static func reference(
    _ a: [Self], _ b: [Self], _ c: inout [Self], _ shape: MatmulShape, _ accumulate: Bool)
}

extension Float: MatmulTestScalar {
  static var tolerance: Double { 1e-5 }
  static func fast(
    _ a: [Float], _ b: [Float], _ c: inout [Float], _ shape: MatmulShape, _ accumulate: Bool
  ) {
    matmul(a, b, into: &c, shape, accumulate: accumulate)
  }
  static func reference(
    _ a: [Float], _ b: [Float], _ c: inout [Float], _ shape: MatmulShape, _ accumulate: Bool
  ) {
    matmulReference(a, b, into: &c, shape, accumulate: accumulate)
  }
}

extension Double: MatmulTestScalar {
  static var tolerance: Double { 1e-12 }
  static func fast(
    _ a: [Double], _ b: [Double], _ c: inout [Double], _ shape: MatmulShape, _ accumulate: Bool
  ) {
    matmul(a, b, into: &c, shape, accumulate: accumulate)
  }
  static func reference(
    _ a: [Double], _ b: [Double], _ c: inout [Double], _ shape: MatmulShape, _ accumulate: Bool
  ) {
    matmulReference(a, b, into: &c, shape, accumulate: accumulate)
  }
}

/// Runs the fast and the reference matmul on the same random operands; returns the
/// relative difference.
func compare<T: MatmulTestScalar>(
  _ type: T.Type, _ shape: MatmulShape, accumulate: Bool = false, seed: UInt64 = 1,
  storage: Int? = nil
) -> Double {
  let aCount =
    storage ?? (shape.batchStrideA == 0 ? shape.m * shape.k : shape.batch * shape.m * shape.k)
  let bCount =
    storage ?? (shape.batchStrideB == 0 ? shape.k * shape.n : shape.batch * shape.k * shape.n)
  let a: [T] = fill(aCount, seed: seed)
  let b: [T] = fill(bCount, seed: seed + 1)
  let start: [T] = fill(storage ?? shape.batch * shape.m * shape.n, seed: seed + 2)
  var fast = start
  var reference = start
  T.fast(a, b, &fast, shape, accumulate)
  T.reference(a, b, &reference, shape, accumulate)
  return relativeDifference(fast, reference)
}

let oddSizes = [1, 3, 17, 33, 65, 129]
let forms = [(false, false), (false, true), (true, false), (true, true)]

@Test(arguments: oddSizes)
func fastMatmulMatchesReferenceOnOddShapes(m: Int) {
  for n in oddSizes {
    for k in oddSizes {
      for (ta, tb) in forms {
        let shape = MatmulShape(m: m, n: n, k: k, transposeA: ta, transposeB: tb)
        let float = compare(Float.self, shape)
        let double = compare(Double.self, shape)
        #expect(float <= Float.tolerance, "Float \(shape): \(float)")
        #expect(double <= Double.tolerance, "Double \(shape): \(double)")
      }
    }
  }
}

@Test func batchedSharedAndAccumulatingFormsMatchReference() {
  for (ta, tb) in forms {
    for (shareA, shareB) in [(false, false), (true, false), (false, true)] {
      for accumulate in [false, true] {
        let base = MatmulShape(m: 33, n: 65, k: 17, transposeA: ta, transposeB: tb)
        let shape = MatmulShape(
          m: 33, n: 65, k: 17, transposeA: ta, transposeB: tb, batch: 3,
          batchStrideA: shareA ? 0 : base.batchStrideA, batchStrideB: shareB ? 0 : base.batchStrideB
        )
        let float = compare(Float.self, shape, accumulate: accumulate)
        let double = compare(Double.self, shape, accumulate: accumulate)
        #expect(float <= Float.tolerance, "Float \(shape) accumulate \(accumulate): \(float)")
        #expect(double <= Double.tolerance, "Double \(shape) accumulate \(accumulate): \(double)")
      }
    }
  }
}

@Test func largeProductsMatchReference() {
  // Large enough to be packed and threaded, with a 4 KiB row stride and edge tiles.
  for shape in [
    MatmulShape(m: 130, n: 1024, k: 40), MatmulShape(m: 129, n: 100, k: 257, transposeA: true),
    MatmulShape(m: 200, n: 70, k: 150, transposeB: true),
  ] {
    #expect(compare(Float.self, shape) <= Float.tolerance, "\(shape)")
    #expect(compare(Double.self, shape) <= Double.tolerance, "\(shape)")
  }
}

@Test func leadingDimensionsReadAndWriteRowsInPlace() {
  // One "head" of width 5 read out of wider rows, as attention reads it.
  for (ta, tb) in forms {
    for accumulate in [false, true] {
      let shape = MatmulShape(
        m: 19, n: 37, k: 5, transposeA: ta, transposeB: tb,
        leadingDimensionA: 24, leadingDimensionB: 50, leadingDimensionC: 41)
      let float = compare(Float.self, shape, accumulate: accumulate, storage: 19 * 50 * 50)
      let double = compare(Double.self, shape, accumulate: accumulate, storage: 19 * 50 * 50)
      #expect(float <= Float.tolerance, "Float \(shape): \(float)")
      #expect(double <= Double.tolerance, "Double \(shape): \(double)")
    }
  }
}

/// Every microkernel, on every shape, must give the bits of the sequential chain of fused
/// multiply-adds (`matmulChain`): the tile shape decides only which elements are computed
/// together. Kernels for other CPUs run here too (slower, where their tile spills).
@Test(arguments: MatmulKernel.allCases)
func everyKernelGivesTheBitsOfTheFusedChain(kernel: MatmulKernel) {
  var shapes: [MatmulShape] = []
  for m in oddSizes {
    for n in oddSizes {
      for (ta, tb) in forms {
        // Inner dimensions below and above one pass (`passDepth`: at most 2 · `depthPerPass`),
        // odd.
        for k in [1, 17, 2 * depthPerPass + 33] {
          shapes.append(MatmulShape(m: m, n: n, k: k, transposeA: ta, transposeB: tb))
        }
      }
    }
  }
  shapes.append(MatmulShape(m: 33, n: 65, k: 17, batch: 3, batchStrideB: 0))
  // Whose last panel is exactly one vector wide, written straight to C by the narrow tile
  // (AVX-512: 48 = 32 + 16; AVX2 and portable: 24 = 16 + 8; NEON: 12 = 8 + 4).
  // Read in place; over more than one pass it is resumed from the block buffer.
  for n in [12, 24, 48] {
    for (ta, tb) in forms {
      for k in [40, 2 * depthPerPass + 33] {
        shapes.append(MatmulShape(m: 25, n: n, k: k, transposeA: ta, transposeB: tb))
      }
    }
  }
  // Large only as a batch, as attention's heads are: on threads, but each item's A read in
  // place and B neither packed nor sliced unless transposed (`largeItem`).
  for (ta, tb) in forms {
    shapes.append(MatmulShape(m: 64, n: 40, k: 64, transposeA: ta, transposeB: tb, batch: 8))
  }
  // Small, one pass, B transposed, with at least `minimumTasks` panels: each task packs its
  // own panel (`packsPanelsInTasks`), the last one padded, or (AVX-512: 272 = 8 · 32 + 16)
  // exactly one vector wide.
  for n in [257, 272] {
    shapes.append(MatmulShape(m: 65, n: n, k: 129, transposeB: true))
  }
  // Large: threads; B packed row by row (`packRows`), its last panel padded.
  shapes.append(MatmulShape(m: 200, n: 130, k: 600, transposeA: true))
  shapes.append(MatmulShape(m: 150, n: 100, k: 300))
  // Deep (a transposed A, k ≥ `deepProductDepth`): cut along the panels (m < n), along the
  // rows (rows of A within `shortRowBytes`, read in place, and longer ones, packed), and
  // along rows of A of 1 KiB or more, which its packing fetches ahead.
  shapes.append(MatmulShape(m: 17, n: 65, k: deepProductDepth + 33, transposeA: true))
  shapes.append(MatmulShape(m: 61, n: 33, k: deepProductDepth + 33, transposeA: true))
  shapes.append(MatmulShape(m: 129, n: 33, k: deepProductDepth + 33, transposeA: true))
  shapes.append(MatmulShape(m: 257, n: 33, k: deepProductDepth + 33, transposeA: true))
  // Whose last panel is one vector; a deep product's B larger than `packedBBytes` read in
  // place, each pass of a panel copied (`slicesPanels`), the narrow panel's too.
  for n in [24, 48] {
    shapes.append(MatmulShape(m: 200, n: n, k: 600, transposeA: true))
    let k = packedBBytes / (MemoryLayout<Float>.stride * n) + 40
    shapes.append(MatmulShape(m: 200, n: n, k: k))
    shapes.append(MatmulShape(m: 200, n: n, k: k, transposeA: true))
  }
  // A B of `panelMajorBBytes` or more, in Float and Double: tasks panel block by panel
  // block (`panelMajor`), the last panel padded.
  for (ta, tb) in forms {
    shapes.append(MatmulShape(m: 70, n: 520, k: 520, transposeA: ta, transposeB: tb))
  }
  // Operands drawn once, at the largest size; each shape reads their first elements.
  let count = shapes.map { $0.batch * Swift.max($0.m, $0.n) * Swift.max($0.k, $0.n) }.max()!
  let (a32, b32, c32): ([Float], [Float], [Float]) =
    (fill(count, seed: 3), fill(count, seed: 4), fill(count, seed: 5))
  let (a64, b64, c64): ([Double], [Double], [Double]) =
    (fill(count, seed: 3), fill(count, seed: 4), fill(count, seed: 5))
  for shape in shapes {
    for accumulate in [false, true] {
      var (fast32, chain32, fast64, chain64) = (c32, c32, c64, c64)
      matmul(a32, b32, into: &fast32, shape, accumulate: accumulate, kernel: kernel)
      matmulChain(a32, b32, into: &chain32, shape, accumulate: accumulate)
      matmul(a64, b64, into: &fast64, shape, accumulate: accumulate, kernel: kernel)
      matmulChain(a64, b64, into: &chain64, shape, accumulate: accumulate)
      let (same32, same64) = (sameBits(fast32, chain32), sameBits(fast64, chain64))
      #expect(same32, "\(kernel) Float \(shape) accumulate \(accumulate)")
      #expect(same64, "\(kernel) Double \(shape) accumulate \(accumulate)")
    }
  }
}

/// A sum of two products of one C (`matmul(_:_:_:plus:…)`, a Linear plus its low-rank
/// update) has the bits of the two products one after the other, the second accumulated:
/// on every kernel, in one pass and in several, on threads or not, batched, and with an
/// empty inner dimension on either side.
@Test(arguments: MatmulKernel.allCases)
func aSumOfTwoProductsHasTheBitsOfTheTwoCalls(kernel: MatmulKernel) {
  var pairs: [(MatmulShape, MatmulShape)] = []
  for (m, n) in [(1, 3), (17, 33), (129, 65), (65, 272)] {
    for (k, k2) in [(17, 3), (129, 8), (2 * depthPerPass + 33, 48), (0, 5), (7, 0)] {
      for (ta, tb) in forms {
        pairs.append(
          (
            MatmulShape(m: m, n: n, k: k, transposeA: ta, transposeB: tb),
            MatmulShape(m: m, n: n, k: k2, transposeA: tb, transposeB: !ta)
          ))
      }
    }
  }
  pairs.append(
    (MatmulShape(m: 33, n: 20, k: 9, batch: 3), MatmulShape(m: 33, n: 20, k: 4, batch: 3)))
  // A second product that packs its panels of B task by task (`packsPanelsInTasks`) after a
  // first whose tasks span several panels.
  pairs.append(
    (MatmulShape(m: 65, n: 272, k: 7), MatmulShape(m: 65, n: 272, k: 129, transposeB: true)))
  // A deep second product (a transposed A, k ≥ `deepProductDepth`).
  pairs.append(
    (
      MatmulShape(m: 129, n: 33, k: 17),
      MatmulShape(m: 129, n: 33, k: deepProductDepth + 33, transposeA: true)
    ))
  let count = pairs.map { $0.0.batch * 300 * Swift.max($0.0.k, $0.1.k, 300) }.max()!
  let (a, b, a2, b2, c): ([Float], [Float], [Float], [Float], [Float]) = (
    fill(count, seed: 6), fill(count, seed: 7), fill(count, seed: 8), fill(count, seed: 9),
    fill(count, seed: 10)
  )
  for (first, second) in pairs {
    var (sum, calls) = (c, c)
    matmul(a, b, first, plus: a2, b2, second, into: &sum, kernel: kernel)
    matmul(a, b, into: &calls, first, kernel: kernel)
    matmul(a2, b2, into: &calls, second, accumulate: true, kernel: kernel)
    #expect(sameBits(sum, calls), "\(kernel) \(first) + \(second)")
  }
}

/// Whether two arrays hold the same bytes.
func sameBits<T>(_ x: [T], _ y: [T]) -> Bool {
  x.withUnsafeBytes { x in
    y.withUnsafeBytes { y in
      x.count == y.count && memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0
    }
  }
}

@Test func emptyInnerDimensionGivesZerosOrLeavesC() {
  var c: [Float] = [1, 2, 3, 4]
  matmul([], [], into: &c, MatmulShape(m: 2, n: 2, k: 0), accumulate: true)
  #expect(c == [1, 2, 3, 4])
  matmul([], [], into: &c, MatmulShape(m: 2, n: 2, k: 0))
  #expect(c == [0, 0, 0, 0])
}

/// A deep product (`TiledMatmul.deep`) groups its tiles into tasks by the thread count,
/// along its panels (the first deep shape) or its rows (the second).
@Test(arguments: [
  MatmulShape(m: 257, n: 190, k: 300, transposeB: true),
  MatmulShape(m: 40, n: 190, k: deepProductDepth + 7, transposeA: true),
  MatmulShape(m: 300, n: 40, k: deepProductDepth + 7, transposeA: true),
])
func matmulIsBitwiseIdenticalWhateverRunsItsTasks(shape: MatmulShape) {
  let a: [Float] = fill(shape.m * shape.k, seed: 7)
  let b: [Float] = fill(shape.k * shape.n, seed: 8)
  func product() -> [Float] {
    var c = [Float](repeating: 0, count: shape.m * shape.n)
    matmul(a, b, into: &c, shape)
    return c
  }
  var results: [[Float]] = []
  for threads in [1, 2, 3] {
    Parallelism.threadCount = threads
    results.append(product())
  }
  Parallelism.threadCount = 2
  // Threads may or may not take tasks (the pool may be busy with another test); the
  // reversed order is certain to differ from one thread's.
  Parallelism.reversesTasks = true
  results.append(product())
  Parallelism.reversesTasks = false
  for result in results.dropFirst() { #expect(result == results[0]) }
}

/// A set of threads, filled from the pool's threads.
private final class ThreadsSeen: @unchecked Sendable {
  private let lock = NSLock()
  private var seen = Set<ObjectIdentifier>()
  func add() { lock.withLock { _ = seen.insert(ObjectIdentifier(Thread.current)) } }
  var count: Int { lock.withLock { seen.count } }
}

@Test func thePoolRunsAJobsTasksOnMoreThanOneThread() {
  // Another test may hold the pool: try until it takes this job (`run` answers false).
  let threads = ThreadsSeen()
  var ran = false
  for _ in 0..<10_000 where !ran {
    ran = WorkerPool.shared.run(64, helpers: 1) { _ in
      threads.add()
      usleep(200)
    }
    if !ran { usleep(1000) }
  }
  #expect(ran)
  #expect(threads.count == 2, "the caller and one worker each ran tasks")
}

/// `forEachEvenChunk` covers every index once, in an even number of chunks whose sizes differ
/// by one at most, or in one chunk when the count is within the grain.
@Test func evenChunksCoverEveryIndexOnceInEqualShares() {
  for (count, grain) in [(1, 682), (682, 682), (683, 682), (2048, 682), (2048, 341), (2049, 170)] {
    let lock = NSLock()
    var seen: [Range<Int>] = []
    forEachEvenChunk(count, grain: grain) { range in lock.withLock { seen.append(range) } }
    let chunks = seen.sorted { $0.lowerBound < $1.lowerBound }
    #expect(chunks.first?.lowerBound == 0 && chunks.last?.upperBound == count, "\(count)")
    #expect(zip(chunks, chunks.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
    #expect(chunks.count == 1 ? count <= grain : chunks.count % 2 == 0, "\(count), \(grain)")
    let sizes = chunks.map(\.count)
    #expect(sizes.max()! - sizes.min()! <= 1, "\(sizes)")
  }
}

@Test func reversedTasksRunLastFirstOnTheCallingThread() {
  Parallelism.reversesTasks = true
  var order: [Int] = []
  parallelFor(4) { order.append($0) }
  Parallelism.reversesTasks = false
  #expect(order == [3, 2, 1, 0])
}

@Test func theProfileTimesProductsByShapeOnlyWhileRecording() {
  // A shape no other test uses: tests run concurrently, and their products are timed too
  // while this one records.
  let shape = MatmulShape(m: 3, n: 5, k: 7, transposeB: true, batch: 2)
  let (a, b): ([Float], [Float]) = (fill(2 * 3 * 7, seed: 1), fill(2 * 5 * 7, seed: 2))
  var c = [Float](repeating: 0, count: 2 * 3 * 5)
  matmul(a, b, into: &c, shape)  // before recording: not counted
  let entries = MatmulProfile.recording {
    matmul(a, b, into: &c, shape)
    matmul(a, b, into: &c, shape)
    matmul(a, b, into: &c, shape, accumulate: true)
    matmul(
      a, b, shape, plus: a, b, MatmulShape(m: 3, n: 5, k: 2, transposeB: true, batch: 2), into: &c)
  }
  let plain = entries["[3×7]·[5×7]ᵀ ×2"]
  #expect(plain?.count == 2)
  #expect(plain?.flops == Double(2 * 2 * (2 * 3 * 5 * 7)))
  #expect(plain.map { $0.nanoseconds > 0 } == true)
  #expect(entries["[3×7]·[5×7]ᵀ ×2 + C"]?.count == 1)
  let sum = entries["[3×7]·[5×7]ᵀ ×2 + [3×2]·[5×2]ᵀ ×2"]
  #expect(sum?.count == 1)
  #expect(sum?.flops == Double(2 * (2 * 3 * 5 * 7) + 2 * (2 * 3 * 5 * 2)))
}
