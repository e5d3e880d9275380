import Foundation
import Synchronization

/// Reusable scratch memory for kernels.
///
/// A fresh allocation of a megabyte is mapped from the system, and touching it costs a
/// page fault per 4 KiB; a kernel called thousands of times per second would spend a fifth
/// of its time there. Buffers handed back are kept (up to `keep` of them per shelf) for the
/// next call.
///
/// The kept buffers are on a few shelves, each with its own lock, and each thread takes
/// the next shelf the first time it asks (`shelf`), so threads taking buffers at the same
/// time rarely wait for one another. (With one shelf for all, taking and giving back buffers
/// was 7% of the samples of attention at the toy tasks' 17 positions, 3% waiting for the
/// lock; with shelves, attention's forward and backward ran 1.13 to 1.16 times as fast
/// there, and a toy-sst2 training step 1.03 times: AMD EPYC Zen 3, 2 threads, in turns.) A
/// shelf's lock and list have cache lines of their own: picked by a hash of the thread's
/// identity, which moves from run to run, two threads sometimes shared a shelf or a line,
/// and giving buffers back took 2.0% of the bench mixture's samples in one run, 0.4 to 0.5%
/// in others; so, 0.3% (Intel Xeon, Emerald Rapids, 2 threads, `perf record`, two runs).
enum Scratch {
  private final class Shelf: Sendable {
    let buffers: Mutex<[UncheckedSendable<(UnsafeMutableRawPointer, Int)>]>
    /// Keeps the next shelf's lock off this one's cache lines (two of 64 bytes: processors
    /// fetch lines in pairs).
    let gap = InlineArray<16, UInt64>(repeating: 0)

    init() {
      // Room for every buffer kept, so the list is never moved next to another's.
      var free: [UncheckedSendable<(UnsafeMutableRawPointer, Int)>] = []
      free.reserveCapacity(2 * Scratch.keep)
      buffers = Mutex(free)
    }
  }
  private static let shelves = (0..<8).map { _ in Shelf() }
  private static let keep = 16
  /// The shelf the next thread to ask takes.
  private static let nextShelf = Atomic<Int>(0)
  /// Each thread's shelf, plus one (0: none yet).
  private static let shelfKey: pthread_key_t = {
    var key = pthread_key_t()
    precondition(pthread_key_create(&key, nil) == 0, "no thread-specific key for scratch memory")
    return key
  }()

  /// The calling thread's shelf.
  private static var shelf: Shelf {
    if let stored = pthread_getspecific(shelfKey) { return shelves[Int(bitPattern: stored) - 1] }
    let index = nextShelf.add(1, ordering: .relaxed).oldValue % shelves.count
    pthread_setspecific(shelfKey, UnsafeRawPointer(bitPattern: index + 1))
    return shelves[index]
  }

  /// Calls `body` with uninitialized memory for `count` values of `T`.
  static func with<T, R>(
    _ type: T.Type, count: Int, _ body: (UnsafeMutablePointer<T>) throws -> R
  ) rethrows -> R {
    let bytes = max(64, count * MemoryLayout<T>.stride)
    let shelf = shelf
    let (raw, capacity) = take(bytes, from: shelf)
    defer { give(raw, capacity, to: shelf) }
    return try body(raw.bindMemory(to: T.self, capacity: count))
  }

  /// The smallest kept buffer of at least `bytes`, or a new one.
  private static func take(_ bytes: Int, from shelf: Shelf) -> (UnsafeMutableRawPointer, Int) {
    let found = shelf.buffers.withLock { free -> (UnsafeMutableRawPointer, Int)? in
      var best: Int? = nil
      for (index, buffer) in free.enumerated() where buffer.value.1 >= bytes {
        if best == nil || buffer.value.1 < free[best!].value.1 { best = index }
      }
      return best.map { free.remove(at: $0).value }
    }
    if let found { return found }
    return (.allocate(byteCount: bytes, alignment: 64), bytes)
  }

  private static func give(_ raw: UnsafeMutableRawPointer, _ bytes: Int, to shelf: Shelf) {
    let evicted = shelf.buffers.withLock { free -> UnsafeMutableRawPointer? in
      free.append(UncheckedSendable(value: (raw, bytes)))
      guard free.count > keep else { return nil }
      let smallest = free.indices.min { free[$0].value.1 < free[$1].value.1 }!
      return free.remove(at: smallest).value.0
    }
    evicted?.deallocate()
  }
}
