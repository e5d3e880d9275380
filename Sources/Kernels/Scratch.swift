import Synchronization

/// Reusable scratch memory for kernels.
///
/// A fresh allocation of a megabyte is mapped from the system, and touching it costs a
/// page fault per 4 KiB; a kernel called thousands of times per second would spend a fifth
/// of its time there. Buffers handed back are kept (up to `keep` of them) for the next call.
enum Scratch {
  private static let free = Mutex<[UncheckedSendable<(UnsafeMutableRawPointer, Int)>]>([])
  private static let keep = 16

  /// Calls `body` with uninitialized memory for `count` values of `T`.
  static func with<T, R>(
    _ type: T.Type, count: Int, _ body: (UnsafeMutablePointer<T>) throws -> R
  ) rethrows -> R {
    let bytes = max(64, count * MemoryLayout<T>.stride)
    let (raw, capacity) = take(bytes)
    defer { give(raw, capacity) }
    return try body(raw.bindMemory(to: T.self, capacity: count))
  }

  /// The smallest kept buffer of at least `bytes`, or a new one.
  private static func take(_ bytes: Int) -> (UnsafeMutableRawPointer, Int) {
    let found = free.withLock { free -> (UnsafeMutableRawPointer, Int)? in
      var best: Int? = nil
      for (index, buffer) in free.enumerated() where buffer.value.1 >= bytes {
        if best == nil || buffer.value.1 < free[best!].value.1 { best = index }
      }
      return best.map { free.remove(at: $0).value }
    }
    if let found { return found }
    return (.allocate(byteCount: bytes, alignment: 64), bytes)
  }

  private static func give(_ raw: UnsafeMutableRawPointer, _ bytes: Int) {
    let evicted = free.withLock { free -> UnsafeMutableRawPointer? in
      free.append(UncheckedSendable(value: (raw, bytes)))
      guard free.count > keep else { return nil }
      let smallest = free.indices.min { free[$0].value.1 < free[$1].value.1 }!
      return free.remove(at: smallest).value.0
    }
    evicted?.deallocate()
  }
}
