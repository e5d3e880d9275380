// Lesson 02: the ladder from the triple loop to a fast matmul.
// Run from a release build: swift run -c release lesson02-fast-matmul [--sizes 128,256,512]

import Diagrams
import Dispatch
import Exercises
import Foundation
import Kernels

// `--exercise` checks this lesson's exercise (exercise.swift) instead of running it.
if CommandLine.arguments.contains("--exercise") { exit(checkFusedChain(plainMultiply).report()) }
// `--diagram FILE` draws this lesson's picture (register-tile.svg) from the real code.
if try registerTileDiagram().writeIfAsked() { exit(0) }

/// A matmul method: C = A · B for square n×n row-major matrices.
typealias Method = (
  _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>, _ n: Int
) -> Void

// Rung 1: the definition, one dot product per element of C (Kernels.matmulReference).
func tripleLoop(
  _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>, _ n: Int
) {
  matmulReference(a, b, into: c, MatmulShape(m: n, n: n, k: n))
}

// Rung 2: the same sums in another order. The inner loop now walks a row of B and a row of
// C, both contiguous, and has no dependency between iterations: the compiler vectorizes it,
// provided the row pointers are computed outside the loop (see README.md).
func reordered(
  _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>, _ n: Int
) {
  c.update(repeating: 0, count: n * n)
  for i in 0..<n {
    let cRow = c + i * n
    for p in 0..<n {
      let x = a[i * n + p]
      let bRow = b + p * n
      for j in 0..<n { cRow[j] += x * bRow[j] }
    }
  }
}

// Rung 3: explicit SIMD with fused multiply-add, 16 floats at a time. Still, every
// multiply-add loads and stores its part of C: memory, not arithmetic, sets the pace.
func simdRows(
  _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>, _ n: Int
) {
  c.update(repeating: 0, count: n * n)
  let row = UnsafeMutableRawPointer(c)
  let bRaw = UnsafeRawPointer(b)
  for i in 0..<n {
    for p in 0..<n {
      let x = SIMD16<Float>(repeating: a[i * n + p])
      for j in stride(from: 0, to: n - 15, by: 16) {
        let offset = (i * n + j) * 4
        let sum = row.loadUnaligned(fromByteOffset: offset, as: SIMD16<Float>.self)
          .addingProduct(
            x, bRaw.loadUnaligned(fromByteOffset: (p * n + j) * 4, as: SIMD16<Float>.self))
        row.storeBytes(of: sum, toByteOffset: offset, as: SIMD16<Float>.self)
      }
      for j in (n / 16 * 16)..<n { c[i * n + j] += a[i * n + p] * b[p * n + j] }  // the rest
    }
  }
}

// Rung 4: register blocking (the library's kernel on one thread). A tile of C (6 × 16 on
// AVX2, 8 × 32 on AVX-512, 12 × 8 on NEON) stays in SIMD registers for the whole inner
// loop; each step loads two vectors of B and one number of A per row of the tile for two
// fused multiply-adds per row. See Sources/Kernels/Matmul.swift.
func registerBlocked(
  _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>, _ n: Int
) {
  Parallelism.threadCount = 1
  matmul(a, b, into: c, MatmulShape(m: n, n: n, k: n))
}

// Rung 5: two threads with DispatchQueue.concurrentPerform, each running rung 4 on half of
// the rows of C.
func dispatchThreads(
  _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>, _ n: Int
) {
  Parallelism.threadCount = 1
  let halves = [(0, n / 2), (n / 2, n)]
  let pointers = (UInt(bitPattern: a), UInt(bitPattern: b), UInt(bitPattern: c))
  DispatchQueue.concurrentPerform(iterations: 2) { half in
    let (start, end) = halves[half]
    let a = UnsafePointer<Float>(bitPattern: pointers.0)!
    let b = UnsafePointer<Float>(bitPattern: pointers.1)!
    let c = UnsafeMutablePointer<Float>(bitPattern: pointers.2)!
    matmul(a + start * n, b, into: c + start * n, MatmulShape(m: end - start, n: n, k: n))
  }
}

// Rung 6: two threads from the library's worker pool (Sources/Kernels/Parallel.swift),
// whose workers spin briefly between jobs instead of going to sleep.
func workerPool(
  _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>, _ n: Int
) {
  Parallelism.threadCount = 2
  matmul(a, b, into: c, MatmulShape(m: n, n: n, k: n))
}

let rungs: [(String, Method)] = [
  ("1 triple loop", tripleLoop), ("2 loop order i-p-j", reordered), ("3 SIMD rows", simdRows),
  ("4 register blocking", registerBlocked), ("5 + 2 threads (Dispatch)", dispatchThreads),
  ("6 + 2 threads (worker pool)", workerPool),
]

/// The median time of `runs` calls, each repeated to last at least 50 ms.
func medianSeconds(_ body: () -> Void, runs: Int = 5) -> Double {
  let start = DispatchTime.now().uptimeNanoseconds
  body()
  let once = max(1e-7, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
  let repeats = max(1, Int(0.05 / once))
  var times: [Double] = []
  for _ in 0..<runs {
    let start = DispatchTime.now().uptimeNanoseconds
    for _ in 0..<repeats { body() }
    times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 / Double(repeats))
  }
  return times.sorted()[runs / 2]
}

var sizes = [128, 256, 512]
if let index = CommandLine.arguments.firstIndex(of: "--sizes"),
  index + 1 < CommandLine.arguments.count
{
  sizes = CommandLine.arguments[index + 1].split(separator: ",").compactMap { Int($0) }
}

print("GFLOP/s of C = A · B for n × n Float32 matrices (median of 5 runs)")
print(
  "rung".padding(toLength: 30, withPad: " ", startingAt: 0)
    + sizes.map { "n = \($0)".leftPadded(10) }.joined())
var largestError = 0.0
var results: [[Double]] = rungs.map { _ in [] }
for n in sizes {
  let a = (0..<n * n).map { Float(($0 * 7919) % 2001 - 1000) / 1000 }
  let b = (0..<n * n).map { Float(($0 * 104_729) % 2001 - 1000) / 1000 }
  var reference = [Float](repeating: 0, count: n * n)
  matmulReference(a, b, into: &reference, MatmulShape(m: n, n: n, k: n))
  let scale = reference.map { abs(Double($0)) }.max()!
  for (index, (_, method)) in rungs.enumerated() {
    var c = [Float](repeating: 0, count: n * n)
    let seconds = medianSeconds { method(a, b, &c, n) }
    results[index].append(2 * Double(n * n * n) / seconds / 1e9)
    for (x, y) in zip(c, reference) { largestError = max(largestError, abs(Double(x - y)) / scale) }
  }
}
for (index, (name, _)) in rungs.enumerated() {
  let cells = results[index].map { String(format: "%.1f", $0).leftPadded(10) }.joined()
  print(name.padding(toLength: 30, withPad: " ", startingAt: 0) + cells)
}
print(
  "every rung agrees with the triple loop: \(largestError < 1e-5) (largest difference \(String(format: "%.0e", largestError)) of the largest element)"
)

// The pool's idle spin, both ways. A job of two 5 µs tasks, run back to back (as a
// training step runs its products), and the same jobs 1 ms apart (as a program that does
// something else between them): how long a job takes, and how much CPU the process used
// per job, with the workers spinning after each job (the default) and sleeping at once.
func busy(microseconds: Double) {
  let end = DispatchTime.now().uptimeNanoseconds + UInt64(microseconds * 1000)
  while DispatchTime.now().uptimeNanoseconds < end {}
}
func cpuSeconds() -> Double {
  var time = timespec()
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
  return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}
Parallelism.threadCount = 2
let defaultSpin = Parallelism.idleSpinNanoseconds
print("\nthe worker pool's idle spin: jobs of two 5 µs tasks on 2 threads (median of 2,000 jobs)")
print("idle spin          job back to back  job 1 ms apart  CPU per job 1 ms apart")
for spin in [defaultSpin, 2_000_000, 0] {
  Parallelism.idleSpinNanoseconds = spin
  var cells: [String] = []
  var cpu = 0.0
  for gap in [0.0, 1.0] {
    var times: [Double] = []
    let cpuStart = cpuSeconds()
    for _ in 0..<2000 {
      let start = DispatchTime.now().uptimeNanoseconds
      parallelFor(2) { _ in busy(microseconds: 5) }
      times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1000)
      if gap > 0 { Thread.sleep(forTimeInterval: gap / 1000) }
    }
    cpu = (cpuSeconds() - cpuStart) / 2000 * 1e6
    cells.append(String(format: "%.1f µs", times.sorted()[times.count / 2]))
  }
  print(
    (spin == 0 ? "none (sleep)" : "\(spin / 1000) µs").padding(
      toLength: 17, withPad: " ", startingAt: 0)
      + cells[0].leftPadded(17) + cells[1].leftPadded(16)
      + String(format: "%.1f µs", cpu).leftPadded(24))
}
Parallelism.idleSpinNanoseconds = defaultSpin
parallelFor(2) { _ in busy(microseconds: 5) }
let idleStart = cpuSeconds()
Thread.sleep(forTimeInterval: 1)
print(
  String(
    format: "CPU used by this process in the second after its last job: %.2f ms",
    (cpuSeconds() - idleStart) * 1000))

extension String {
  func leftPadded(_ width: Int) -> String {
    String(repeating: " ", count: max(0, width - count)) + self
  }
}
