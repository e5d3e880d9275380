import Dispatch
import Synchronization

/// Every product of a stretch of work, timed one by one and gathered by shape: which of a
/// training step's products run below the speed `bench matmul` gives the same shape alone
/// (`tinymixer bench train-mixer --profile`). Off, a product pays one atomic load.
public enum MatmulProfile {
  /// The products of one shape: how many, their time, and their floating-point operations
  /// (`MatmulShape.flops`).
  public struct Entry: Sendable {
    /// How many products.
    public var count = 0
    /// Their time, summed.
    public var nanoseconds: UInt64 = 0
    /// Their floating-point operations, summed.
    public var flops = 0.0
    /// Whether they ran inside another kernel's parallel tasks (attention's, a sequence a
    /// task), each on one thread: then `nanoseconds` is summed over the threads.
    public var inTasks = false
  }

  private static let isOn = Atomic<Bool>(false)
  private static let entries = Mutex<[String: Entry]>([:])

  /// Runs `body` with every product timed, and returns them by shape: the shape's
  /// `description`, followed by ` + C` for a product added into its output; a sum of two
  /// products as both shapes joined by ` + `. Products that other threads run meanwhile are
  /// counted too; one recording at a time.
  public static func recording(_ body: () -> Void) -> [String: Entry] {
    entries.withLock { $0 = [:] }
    isOn.store(true, ordering: .relaxed)
    body()
    isOn.store(false, ordering: .relaxed)
    return entries.withLock { $0 }
  }

  /// When recording, the time now, to hand to `add` when the product is done.
  @inline(__always)
  static func start() -> UInt64? {
    isOn.load(ordering: .relaxed) ? DispatchTime.now().uptimeNanoseconds : nil
  }

  /// Adds one product of `shape`, begun at `started` (from `start`).
  static func add(_ shape: MatmulShape, accumulate: Bool, started: UInt64) {
    add(shape.description + (accumulate ? " + C" : ""), flops: shape.flops, started: started)
  }

  /// Adds one sum of two products (`matmul(_:_:_:plus:…)`), as `first + second`.
  static func add(_ first: MatmulShape, plus second: MatmulShape, started: UInt64) {
    add("\(first) + \(second)", flops: first.flops + second.flops, started: started)
  }

  /// Adds one product with a block-sparse one added (`matmul(_:_:_:plus:into:…)`), as
  /// `first + second`, marked `(zero blocks skipped)` when they were, its operations
  /// counted as the dense sum's.
  static func add<T>(
    _ first: MatmulShape, plus sparse: BlockSparseProduct<T>, skipped: Bool, started: UInt64
  ) {
    let second = sparse.shape(rows: first.m)
    add(
      "\(first) + \(second)" + (skipped ? " (zero blocks skipped)" : ""),
      flops: first.flops + second.flops, started: started)
  }

  /// Adds one `TransposedBlockSparseProduct`, as its dense shape marked `(zero blocks
  /// skipped)`, its operations counted as the dense product's.
  static func add<T>(_ sparse: TransposedBlockSparseProduct<T>, started: UInt64) {
    add(
      "\(sparse.shape) (zero blocks skipped)", flops: sparse.shape.flops, started: started)
  }

  private static func add(_ key: String, flops: Double, started: UInt64) {
    let time = DispatchTime.now().uptimeNanoseconds - started
    let inTasks = WorkerPool.shared.isRunningJob
    entries.withLock {
      var entry = $0[key] ?? Entry()
      entry.count += 1
      entry.nanoseconds += time
      entry.flops += flops
      entry.inTasks = entry.inTasks || inTasks
      $0[key] = entry
    }
  }
}
