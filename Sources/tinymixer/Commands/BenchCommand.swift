import Foundation
import Kernels

/// `tinymixer bench <what>`: speed measurements, for release builds.
enum BenchCommand: Command {
  static let name = "bench"
  static let summary =
    "measure speed (run from a release build: swift run -c release tinymixer bench ...)"
  static let synopsis =
    "tinymixer bench matmul|train-base|train-mixer [--threads N] [--runs N] [--no-numpy] [--profile]"
  static let options: [Option] = [
    .threads,
    Option(
      name: "runs", valueName: "N",
      help: "timed runs per measurement; the median is reported (default: 7)"),
    Option(name: "no-numpy", valueName: nil, help: "skip the numpy (OpenBLAS) comparison"),
    Option(
      name: "profile", valueName: nil,
      help: "also print where a training step's time goes, by operation"),
  ]

  static func run(_ arguments: Arguments) throws -> Int32 {
    try arguments.expectPositionals(1, 1, "what to measure: matmul, train-base or train-mixer")
    let runs = try arguments.integer("runs", default: 7, in: 1...1000)
    switch arguments.positionals[0] {
    case "matmul":
      try MatmulBenchmark(runs: runs, numpy: !arguments.has("no-numpy")).run()
    case "train-base":
      TrainingBenchmark(runs: runs, profile: arguments.has("profile")).runBase()
    case "train-mixer":
      TrainingBenchmark(runs: runs, profile: arguments.has("profile")).runMixer()
    default:
      throw ToolError.usage(
        "unknown benchmark '\(arguments.positionals[0])'; choose matmul, train-base or train-mixer")
    }
    return 0
  }
}

/// The median time of one call of `body`, in seconds, over `runs` timed runs. Each run
/// repeats `body` until it has taken at least `minimumSeconds`, after one warm-up call.
func medianSeconds(runs: Int, minimumSeconds: Double = 0.02, _ body: () -> Void) -> Double {
  func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
  var start = now()
  body()
  let once = max(now() - start, 1e-7)
  let repeats = max(1, Int(minimumSeconds / once))
  var times: [Double] = []
  for _ in 0..<runs {
    start = now()
    for _ in 0..<repeats { body() }
    times.append((now() - start) / Double(repeats))
  }
  return times.sorted()[times.count / 2]
}

/// GFLOP/s of the fast Float32 matmul on square and model shapes, beside numpy's.
struct MatmulBenchmark {
  let runs: Int
  let numpy: Bool

  /// (name, m, k, n): the square sizes, then the products of the bench model of
  /// `tinymixer bench train-base` (2,048 tokens, width 128, MLP 384, vocabulary 512).
  static let shapes: [(String, Int, Int, Int)] =
    [64, 128, 256, 512, 1024].map { ("\($0)³", $0, $0, $0) } + [
      ("2048×128·128×128", 2048, 128, 128), ("2048×128·128×384", 2048, 128, 384),
      ("2048×384·384×128", 2048, 384, 128), ("2048×128·128×512", 2048, 128, 512),
    ]
  /// (name, transposeA, transposeB).
  static let forms = [("A·B", false, false), ("A·Bᵀ", false, true), ("Aᵀ·B", true, false)]

  /// The products of one training step of the bench model, as its backward pass runs them
  /// (name, m, k, n, transposeA, transposeB): each Linear of width in → out runs
  /// `x · Wᵀ` forward, then `g · W` for the input's gradient and `gᵀ · x` (inner dimension
  /// 2,048 tokens) for the weight's.
  static let trainingProducts: [(String, Int, Int, Int, Bool, Bool)] = [
    (128, 128), (128, 384), (384, 128), (128, 512),
  ]
  .flatMap { inputs, outputs in
    [
      ("x·Wᵀ \(inputs)→\(outputs)", 2048, inputs, outputs, false, true),
      ("g·W \(inputs)→\(outputs)", 2048, outputs, inputs, false, false),
      ("gᵀ·x \(inputs)→\(outputs)", outputs, 2048, inputs, true, false),
    ]
  }

  func run() throws {
    let threads = Parallelism.threadCount
    print(
      "Float32 matmul, \(threads) thread\(threads == 1 ? "" : "s"), median of \(runs) runs (GFLOP/s)\n"
    )
    var ours: [Double] = []
    for (_, m, k, n) in Self.shapes {
      for (_, transposeA, transposeB) in Self.forms {
        ours.append(
          measure(MatmulShape(m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB)))
      }
    }
    let theirs = numpy ? numpyGigaflops(threads: threads) : nil
    var table = Table(["shape", "form", "tinymixer", "numpy", "ratio"], rightAligned: [2, 3, 4])
    var index = 0
    for (name, _, _, _) in Self.shapes {
      for (form, _, _) in Self.forms {
        let other = theirs?[index]
        table.add([
          name, form, String(format: "%.1f", ours[index]),
          other.map { String(format: "%.1f", $0) } ?? "-",
          other.map { String(format: "%.2f", ours[index] / $0) } ?? "-",
        ])
        index += 1
      }
    }
    print(table.rendered)
    if numpy && theirs == nil { print("\nnumpy: not available (python3 with numpy not found)") }
    print("\nThe products of one training step of the bench model (Linear in→out, 2,048 tokens):\n")
    var steps = Table(["product", "shape", "GFLOP/s"], rightAligned: [2])
    for (name, m, k, n, transposeA, transposeB) in Self.trainingProducts {
      let shape = MatmulShape(m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB)
      steps.add([name, shape.description, String(format: "%.1f", measure(shape))])
    }
    print(steps.rendered)
  }

  func measure(_ shape: MatmulShape) -> Double {
    var generator = UInt64(0x1234_5678)
    func fill(_ count: Int) -> [Float] {
      (0..<count).map { _ in
        generator = generator &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Float(Int(generator >> 40) % 2001 - 1000) / 1000
      }
    }
    let a = fill(shape.m * shape.k)
    let b = fill(shape.k * shape.n)
    var c = [Float](repeating: 0, count: shape.m * shape.n)
    let seconds = medianSeconds(runs: runs) { matmul(a, b, into: &c, shape) }
    return shape.flops / seconds / 1e9
  }

  /// numpy's GFLOP/s for the same shapes and forms, in the same order, or nil.
  func numpyGigaflops(threads: Int) -> [Double]? {
    let spec = Self.shapes.flatMap { _, m, k, n in
      Self.forms.map { _, ta, tb in "(\(m),\(k),\(n),\(ta ? 1 : 0),\(tb ? 1 : 0))" }
    }.joined(separator: ",")
    let script = """
      import time, numpy as np
      def median_seconds(f, runs):
          f(); start = time.perf_counter(); f(); once = max(time.perf_counter() - start, 1e-7)
          repeats = max(1, int(0.02 / once)); times = []
          for _ in range(runs):
              start = time.perf_counter()
              for _ in range(repeats): f()
              times.append((time.perf_counter() - start) / repeats)
          return sorted(times)[len(times) // 2]
      for (m, k, n, ta, tb) in [\(spec)]:
          rng = np.random.default_rng(0)
          a = rng.uniform(-1, 1, (k, m) if ta else (m, k)).astype(np.float32)
          b = rng.uniform(-1, 1, (n, k) if tb else (k, n)).astype(np.float32)
          x = a.T if ta else a
          y = b.T if tb else b
          print(2 * m * n * k / median_seconds(lambda: x @ y, \(runs)) / 1e9, flush=True)
      """
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script]
    var environment = ProcessInfo.processInfo.environment
    for variable in ["OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"] {
      environment[variable] = "\(threads)"
    }
    process.environment = environment
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    do { try process.run() } catch { return nil }
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { return nil }
    let values = String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap {
      Double($0)
    }
    return values.count == Self.shapes.count * Self.forms.count ? values : nil
  }
}
