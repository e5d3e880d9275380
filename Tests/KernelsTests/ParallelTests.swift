import Testing

@testable import Kernels

/// The pool runs every task of a job exactly once, whatever the split between the calling
/// thread (the lower half first) and its workers (the upper half first, then helping with
/// the lower): odd and even task counts, one worker and three, many jobs in a row.
@Test(arguments: [1, 3])
func thePoolRunsEveryTaskOnce(helpers: Int) {
  for taskCount in [2, 3, 7, 64, 1001] {
    var runs = [Int](repeating: 0, count: taskCount)
    runs.withUnsafeMutableBufferPointer { runs in
      for _ in 0..<50 {
        // Another test's job may hold the pool: wait for it, so that the pool runs this one.
        while !WorkerPool.shared.run(taskCount, helpers: helpers, { runs[$0] += 1 }) {}
      }
    }
    #expect(runs.allSatisfy { $0 == 50 }, "\(taskCount) tasks, \(helpers) helpers")
  }
}
