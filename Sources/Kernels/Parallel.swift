import Foundation
import Synchronization

/// How many threads the kernels may use.
///
/// Kernels split their work into tasks, and each number a kernel writes is computed whole
/// by one task, in an order that does not depend on the task. The threads only decide who
/// runs which task (and a deep matmul how its tiles are grouped into tasks), so every
/// result is bitwise the same on 1 or 16 threads.
public enum Parallelism {
  private static let stored = Atomic<Int>(ProcessInfo.processInfo.activeProcessorCount)

  /// The number of threads kernels use (at least 1). Defaults to the active processor count.
  public static var threadCount: Int {
    get { stored.load(ordering: .relaxed) }
    set { stored.store(max(1, newValue), ordering: .relaxed) }
  }

  private static let spin = Atomic<Int>(100_000)

  /// How long, in nanoseconds, an idle pool worker keeps checking for the next job before
  /// it sleeps (default 100 µs; 0: sleep at once).
  ///
  /// A spinning worker starts the next job at once; one that sleeps must be woken first
  /// (on the AMD EPYC Zen 3, a job of two 5 µs tasks took 7 µs with the spin, 15.5 µs
  /// without); but while it spins it holds a core that another process could use. A
  /// training step runs its jobs back to back, so a short spin keeps them fast, and an
  /// idle process uses no CPU. Lesson 02 measures both.
  public static var idleSpinNanoseconds: Int {
    get { spin.load(ordering: .relaxed) }
    set { spin.store(max(0, newValue), ordering: .relaxed) }
  }

  private static let reversed = Atomic<Bool>(false)

  /// For tests: run every job's tasks on the calling thread, last task first. Which thread
  /// runs a task, and when, must never change a result; a threaded run cannot be made to
  /// schedule tasks any particular way, but this order is the opposite of a one-thread run's,
  /// every time, so a result that depends on the order of tasks is caught for certain.
  static var reversesTasks: Bool {
    get { reversed.load(ordering: .relaxed) }
    set { reversed.store(newValue, ordering: .relaxed) }
  }
}

/// Runs `body(task)` for every task in `0..<taskCount` and returns when all have finished.
///
/// The calling thread and up to `Parallelism.threadCount - 1` pool workers take tasks one at
/// a time: the calling thread from the first task on, the workers from the middle one, each
/// then helping with the other half (`WorkerPool.runTasks`). With one thread or one task,
/// or when the pool is already running another job (a nested or concurrent call), the
/// tasks run on the calling thread in order.
public func parallelFor(_ taskCount: Int, _ body: (Int) -> Void) {
  if Parallelism.reversesTasks {
    for task in (0..<taskCount).reversed() { body(task) }
    return
  }
  let helpers = min(Parallelism.threadCount, taskCount) - 1
  if helpers < 1 || !WorkerPool.shared.run(taskCount, helpers: helpers, body) {
    for task in 0..<taskCount { body(task) }
  }
}

/// A box that lets a non-`Sendable` value cross to the pool's threads.
///
/// Sound here because `WorkerPool.run` does not return until no worker holds the value, and
/// callers write disjoint parts of their output from different tasks.
struct UncheckedSendable<Value>: @unchecked Sendable {
  let value: Value
}

/// Persistent worker threads that spin for a short while between jobs before they sleep.
///
/// Why not `DispatchQueue.concurrentPerform`: on the 2-core build machine (a virtual
/// machine), a parked Dispatch worker takes tens of microseconds to wake, so two 17 µs tasks
/// took 47 µs on two threads against 33 µs on one, and a training step is made of such
/// tasks. A worker that spins for `Parallelism.idleSpinNanoseconds` after its last job
/// starts the next one in about a microsecond. Lesson 02 shows the measurements.
final class WorkerPool: Sendable {
  static let shared = WorkerPool()

  private struct Job {
    let generation: Int
    let taskCount: Int
    let helpers: Int
    let body: UncheckedSendable<(Int) -> Void>
  }

  /// Whether a caller is running a job, and how many worker threads exist.
  private let state = Mutex<(busy: Bool, workers: Int)>((false, 0))
  /// The job being run, if any; workers read it once when they see a new generation.
  private let job = Mutex<Job?>(nil)
  /// Increases by one per job; idle workers watch it.
  private let generation = Atomic<Int>(0)
  /// The next task of the lower half to claim, tagged with its job's generation:
  /// `generation << 32 | task`.
  private let claims = Atomic<Int>(0)
  /// The next task of the upper half to claim, tagged likewise.
  private let upperClaims = Atomic<Int>(0)
  /// Tasks of the current job that have finished.
  private let finished = Atomic<Int>(0)
  /// Workers that have joined the current job and not yet let go of it.
  private let active = Atomic<Int>(0)
  /// Where workers sleep after spinning.
  private let wakeup = NSCondition()

  /// Whether a job is running: a caller now is inside one of its tasks, or beside it.
  var isRunningJob: Bool { state.withLock { $0.busy } }

  /// Runs the job on the calling thread and `helpers` workers; false if the pool is busy.
  func run(_ taskCount: Int, helpers: Int, _ body: (Int) -> Void) -> Bool {
    let acquired = state.withLock { state -> Bool in
      if state.busy { return false }
      state.busy = true
      while state.workers < helpers {
        let index = state.workers
        let thread = Thread { [self] in workerLoop(index: index) }
        thread.name = "tinymixer worker \(index + 1)"
        thread.start()
        state.workers += 1
      }
      return true
    }
    guard acquired else { return false }
    defer { state.withLock { $0.busy = false } }

    withoutActuallyEscaping(body) { body in
      let current = generation.load(ordering: .relaxed) + 1
      finished.store(0, ordering: .relaxed)
      claims.store(current << 32, ordering: .relaxed)
      upperClaims.store(current << 32 | taskCount / 2, ordering: .relaxed)
      job.withLock {
        $0 = Job(
          generation: current, taskCount: taskCount, helpers: helpers,
          body: UncheckedSendable(value: body))
      }
      generation.store(current, ordering: .releasing)
      wakeup.lock()
      wakeup.broadcast()
      wakeup.unlock()

      runTasks(generation: current, taskCount: taskCount, body)
      while finished.load(ordering: .acquiring) < taskCount {}
      job.withLock { $0 = nil }
      while active.load(ordering: .acquiring) > 0 {}
    }
    return true
  }

  /// Claims and runs tasks of the job `generation` until none is left: those of the lower
  /// half first and then of the upper, or with `upperFirst` (the workers) the other way
  /// round.
  ///
  /// Why halves: kernels number their tasks in the order of their rows, so the calling
  /// thread computes the first rows and a worker the last ones, job after job, and the
  /// next operation finds most of its rows in the cache of the core that wrote them. Taken
  /// from one counter, the tasks fell to the two threads by chance, and each operation
  /// read half its rows from the other core. The bench mixture's step (AMD EPYC Zen 5, 2
  /// threads, `bench train-mixer --runs 21`, in turns): the AVX2 build's 4.4 ms less on
  /// average in slow minutes (14 rounds, all faster; 54.4 to 55.7 ms against 58.3 to 60.6),
  /// 0.8 less in fast ones (three rounds, all faster); the AVX-512 build's 6.4 less (eight
  /// rounds, all faster; 36.2 to 37.2 against 42.3 to 43.4); the base model's step (AVX2
  /// build) 2.3 less (six rounds, all faster). Which thread runs a task still changes no
  /// result. With more than one worker, the workers share the upper half.
  private func runTasks(
    generation: Int, taskCount: Int, upperFirst: Bool = false, _ body: (Int) -> Void
  ) {
    var done = 0
    func drain(_ counter: borrowing Atomic<Int>, end: Int) {
      while true {
        let claim = counter.load(ordering: .relaxed)
        let task = claim & 0xFFFF_FFFF
        if claim >> 32 != generation || task >= end { break }
        if counter.compareExchange(
          expected: claim, desired: claim + 1, ordering: .acquiringAndReleasing
        ).exchanged {
          body(task)
          done += 1
        }
      }
    }
    if upperFirst {
      drain(upperClaims, end: taskCount)
      drain(claims, end: taskCount / 2)
    } else {
      drain(claims, end: taskCount / 2)
      drain(upperClaims, end: taskCount)
    }
    finished.add(done, ordering: .releasing)
  }

  private func workerLoop(index: Int) {
    var seen = 0
    while true {
      seen = waitForNewGeneration(after: seen)
      if join(generation: seen, index: index) {
        active.subtract(1, ordering: .releasing)
      }
    }
  }

  /// Spins for up to `Parallelism.idleSpinNanoseconds`, then sleeps, until the generation moves past `seen`.
  private func waitForNewGeneration(after seen: Int) -> Int {
    let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(Parallelism.idleSpinNanoseconds)
    var spins = 0
    while true {
      let current = generation.load(ordering: .acquiring)
      if current != seen { return current }
      spins += 1
      if spins & 1023 == 0 && DispatchTime.now().uptimeNanoseconds > deadline { break }
    }
    wakeup.lock()
    while generation.load(ordering: .acquiring) == seen { wakeup.wait() }
    wakeup.unlock()
    return generation.load(ordering: .acquiring)
  }

  /// Runs tasks of the job `generation` if it is still running and wants this worker.
  /// Returns whether the worker joined (and so must leave by decrementing `active`).
  private func join(generation: Int, index: Int) -> Bool {
    let joined = job.withLock { job -> Job? in
      guard let job, job.generation == generation, index < job.helpers else { return nil }
      active.add(1, ordering: .relaxed)
      return job
    }
    guard let joined else { return false }
    runTasks(
      generation: generation, taskCount: joined.taskCount, upperFirst: true, joined.body.value)
    return true
  }
}
