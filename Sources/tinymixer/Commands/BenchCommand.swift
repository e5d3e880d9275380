import Experiments
import Foundation
import Kernels

/// `tinymixer bench <what>`: speed measurements, for release builds.
enum BenchCommand: Command {
  static let name = "bench"
  static let summary =
    "measure speed (run from a release build: swift run -c release tinymixer bench ...)"
  static let synopsis =
    "tinymixer bench matmul|train-base|train-mixer|train-mamba [--threads N] [--runs N] [--no-numpy] [--kernel NAME] [--shape MxKxN] [--cold] [--profile] [--pytorch PYTHON]"
  static let options: [Option] = [
    .threads,
    Option(
      name: "runs", valueName: "N",
      help: "timed runs per measurement; the median is reported (default: 7)"),
    Option(name: "no-numpy", valueName: nil, help: "skip the numpy (OpenBLAS) comparison"),
    Option(
      name: "kernel", valueName: "NAME",
      help: "matmul: the microkernel to time, avx512, avx2, neon or portable (default: the build's)"
    ),
    Option(
      name: "shape", valueName: "MxKxN",
      help: "matmul: time only this product (m × k by k × n), in its three forms"),
    Option(
      name: "cold", valueName: nil,
      help:
        "matmul: evict the caches before each timed product (64 MiB written), as a training step finds most of its arrays"
    ),
    Option(
      name: "profile", valueName: nil,
      help:
        "also print where a training step's time goes, by operation, and its products by shape "
        + "with their GFLOP/s"),
    Option(
      name: "pytorch", valueName: "PYTHON",
      help:
        "train-base, train-mixer: time PyTorch's eager step of the same model in turns with ours (Benchmarks/pytorch_step.py, run by PYTHON, which needs torch and transformers); the mixture's in two forms, every expert's output formed and the experts stacked as ours"
    ),
  ]

  static func run(_ arguments: Arguments) throws -> Int32 {
    try arguments.expectPositionals(
      1, 1, "what to measure: matmul, train-base, train-mixer or train-mamba")
    let runs = try arguments.integer("runs", default: 7, in: 1...1000)
    let what = arguments.positionals[0]
    let python = arguments.string("pytorch")
    if python != nil && (what == "matmul" || what == "train-mamba") {
      throw ToolError.usage("--pytorch: only train-base and train-mixer have a PyTorch step")
    }
    if arguments.has("cold") && what != "matmul" {
      throw ToolError.usage("--cold: only matmul times products with the caches evicted")
    }
    /// PyTorch's steps, started before our model is built, so that a wrong PYTHON stops
    /// the bench at once.
    func pytorch(_ steps: String...) throws -> [PyTorchStep] {
      guard let python else { return [] }
      return try steps.map {
        try PyTorchStep(python: python, what: $0, threads: Parallelism.threadCount)
      }
    }
    switch what {
    case "matmul":
      let kernel = try arguments.string("kernel").map { name in
        guard let kernel = MatmulKernel(rawValue: name) else {
          throw ToolError.usage(
            "unknown kernel '\(name)'; choose "
              + MatmulKernel.allCases.map(\.rawValue).joined(separator: ", "))
        }
        return kernel
      }
      let shape = try arguments.string("shape").map { text in
        let sizes = text.split(separator: "x").compactMap { Int($0) }
        guard sizes.count == 3, sizes.allSatisfy({ (1...16384).contains($0) }) else {
          throw ToolError.usage(
            "--shape '\(text)': expected MxKxN, three sizes from 1 to 16384, e.g. 512x512x512")
        }
        return (text, sizes[0], sizes[1], sizes[2])
      }
      try MatmulBenchmark(
        runs: runs, numpy: !arguments.has("no-numpy"), kernel: kernel ?? .native, only: shape,
        cold: arguments.has("cold")
      ).run()
    case "train-base":
      TrainingBenchmark(runs: runs, profile: arguments.has("profile"), pytorch: try pytorch("base"))
        .runBase()
    case "train-mixer":
      TrainingBenchmark(
        runs: runs, profile: arguments.has("profile"),
        pytorch: try pytorch("mixer", "mixer-stacked")
      ).runMixer()
    case "train-mamba":
      TrainingBenchmark(runs: runs, profile: arguments.has("profile")).runBase(mamba: true)
    default:
      throw ToolError.usage(
        "unknown benchmark '\(what)'; choose matmul, train-base, train-mixer or train-mamba"
      )
    }
    return 0
  }
}

/// The median time of one call of `body`, in seconds, over `runs` timed runs. Each run
/// repeats `body` until it has taken at least `minimumSeconds`, after one warm-up call.
func medianSeconds(runs: Int, minimumSeconds: Double = 0.02, _ body: @escaping () -> Void)
  -> Double
{
  let timer = RepeatedTimer(minimumSeconds: minimumSeconds, body)
  return (0..<runs).map { _ in timer.seconds() }.sorted()[runs / 2]
}

/// GFLOP/s of the fast Float32 matmul on square and model shapes, beside numpy's.
///
/// The two are timed in turns, shape by shape and run by run (ours, then numpy's, `runs`
/// times), so that a slow minute on a shared machine slows both sides of a ratio alike.
struct MatmulBenchmark {
  let runs: Int
  let numpy: Bool
  let kernel: MatmulKernel
  /// One product (name, m, k, n) to time instead of the tables' shapes.
  var only: (String, Int, Int, Int)? = nil
  /// Whether each timed product finds A, B and C out of the caches (`evictCaches`), one
  /// product per run, as most products of a training step do: there C is new memory and A
  /// was written many arrays ago.
  var cold = false

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
    print("kernel \(kernel)")
    print(
      kernel == .native
        ? "(the build's choice for this CPU: see Package.swift; --kernel runs another)"
        : "(chosen by --kernel; this build's own is \(MatmulKernel.native.rawValue))")
    // numpy's OpenBLAS is held to the kernels of our kernel's instruction set, so that the
    // ratio compares two kernels of one instruction set: Haswell's against our AVX2 one
    // (6 × 16 Float, as ours), SkylakeX's against our AVX-512 one. On the AMD EPYC Zen 5
    // (family 26) the environment set OPENBLAS_CORETYPE=Haswell for every process, and
    // numpy ran its AVX2 kernels at 228 to 259 GFLOP/s where its SkylakeX ones reach 475 to
    // 550 (n = 1024, 2 threads; Benchmarks/SITTINGS.md).
    let effective = kernel == .native ? MatmulKernel.native : kernel
    let coreType: (name: String, instructions: String)? =
      switch effective {
      case .avx2: ("Haswell", "AVX2")
      case .avx512: ("SkylakeX", "AVX-512")
      case .neon, .portable: nil
      }
    let python = numpy ? NumpyTimer(threads: threads, coreType: coreType?.name) : nil
    if let coreType, python != nil {
      let replaced = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"]
        .flatMap { $0 == coreType.name ? nil : " (the environment's \($0) replaced)" }
      print(
        "numpy: OpenBLAS held to its \(coreType.name) (\(coreType.instructions)) kernels,"
          + " OPENBLAS_CORETYPE=\(coreType.name)\(replaced ?? "")")
    }
    if let python {
      print(
        "numpy: OpenBLAS's idle threads sleep after 2^\(python.threadTimeout) cycles,"
          + " OPENBLAS_THREAD_TIMEOUT=\(python.threadTimeout)")
    }
    print(
      "\nFloat32 matmul, \(threads) thread\(threads == 1 ? "" : "s"), median of \(runs) runs"
        + " (GFLOP/s)\(python == nil ? "" : ", numpy timed in turns with ours")"
        + (cold ? "; cold: the caches evicted before each product (64 MiB written)" : "") + "\n")
    /// The measured cells of a row: ours, numpy's and their ratio.
    func measuredCells(_ shape: MatmulShape) -> [String] {
      let (ours, theirs) = measure(shape, against: python)
      return [
        String(format: "%.1f", ours), theirs.map { String(format: "%.1f", $0) } ?? "-",
        theirs.map { String(format: "%.2f", ours / $0) } ?? "-",
      ]
    }
    var table = Table(["shape", "form", "tinymixer", "numpy", "ratio"], rightAligned: [2, 3, 4])
    for (name, m, k, n) in only.map({ [$0] }) ?? Self.shapes {
      for (form, ta, tb) in Self.forms {
        let shape = MatmulShape(m: m, n: n, k: k, transposeA: ta, transposeB: tb)
        table.add([name, form] + measuredCells(shape))
      }
    }
    print(table.rendered)
    if numpy && python == nil { print("\nnumpy: not available (python3 with numpy not found)") }
    if only != nil { return }
    print("\nThe products of one training step of the bench model (Linear in→out, 2,048 tokens):\n")
    var steps = Table(
      ["product", "shape", "tinymixer", "numpy", "ratio"], rightAligned: [2, 3, 4])
    for (name, m, k, n, ta, tb) in Self.trainingProducts {
      let shape = MatmulShape(m: m, n: n, k: k, transposeA: ta, transposeB: tb)
      steps.add([name, shape.description] + measuredCells(shape))
    }
    print(steps.rendered)
  }

  /// Median GFLOP/s of ours and, if `python` is given, of numpy's, timed in turns.
  func measure(_ shape: MatmulShape, against python: NumpyTimer?) -> (Double, Double?) {
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
    var oursSeconds: [Double] = []
    var theirsSeconds: [Double] = []
    func gigaflops(_ times: [Double]) -> Double {
      shape.flops / times.sorted()[times.count / 2] / 1e9
    }
    if cold {
      var eviction = [Float](repeating: 0, count: evictionFloats)
      for _ in 0..<runs {
        // A pause, so that numpy's threads are asleep (see `NumpyTimer`); then every thread
        // writes its share of the eviction buffer, which evicts each core's own caches and
        // leaves our pool's workers awake, as a step's stream of products finds them (numpy's
        // side evicts on two threads of its own and wakes OpenBLAS's with a small product).
        if python != nil { Thread.sleep(forTimeInterval: 0.15) }
        evictCaches(&eviction)
        let start = RepeatedTimer.now()
        matmul(a, b, into: &c, shape, kernel: kernel)
        oursSeconds.append(RepeatedTimer.now() - start)
        if let seconds = python?.seconds(shape, cold: true) { theirsSeconds.append(seconds) }
      }
      return (gigaflops(oursSeconds), theirsSeconds.count == runs ? gigaflops(theirsSeconds) : nil)
    }
    let ours = RepeatedTimer { matmul(a, b, into: &c, shape, kernel: kernel) }
    for _ in 0..<runs {
      if python != nil {
        // A pause, so that numpy's threads are asleep (they spin for 100 µs after a
        // product, see `NumpyTimer`); then untimed batches, as numpy's side runs them.
        Thread.sleep(forTimeInterval: 0.01)
        let start = RepeatedTimer.now()
        repeat { _ = ours.seconds() } while RepeatedTimer.now() - start < warmUpSeconds
      }
      oursSeconds.append(ours.seconds())
      if let seconds = python?.seconds(shape) { theirsSeconds.append(seconds) }
    }
    return (gigaflops(oursSeconds), theirsSeconds.count == runs ? gigaflops(theirsSeconds) : nil)
  }
}

/// Seconds of untimed batches each side of a warm timing runs before its timed batch. A
/// core of the 2-core AMD EPYC Zen 3 virtual machine that has been idle (ours while numpy
/// runs, numpy's while ours does) runs slower for a while, at times longer than a 20 ms
/// batch: five runs of `bench matmul --shape 64x64x64` with one untimed batch after a
/// 0.15 s pause gave ours 44 to 78 GFLOP/s and numpy 40 to 65, a third of the medians in
/// the slow state; with 0.1 s of batches after a 10 ms pause, ours 70 to 80 and numpy 62 to
/// 65 in every one. (512³, 1024³ and 2048 × 128 · 128 × 384, with longer batches, changed
/// within their noise.)
let warmUpSeconds = 0.1

/// Floats written by `evictCaches`: 64 MiB, twice the level-3 cache of the machines measured
/// here (AMD EPYC, 32 MiB).
let evictionFloats = 16 << 20

/// Times `evictCaches` writes its buffer: about 20 ms of work for every core, because a
/// core of this virtual machine that has just been idle runs slower for a while (see
/// `warmUpSeconds`).
let evictionPasses = 4

/// Adds 1 to every number of `buffer`, `evictionPasses` times, a share on each thread, so
/// that every core's caches hold the buffer, dirty, instead of what they held before.
func evictCaches(_ buffer: inout [Float]) {
  let threads = Parallelism.threadCount
  buffer.withUnsafeMutableBufferPointer { numbers in
    let share = (numbers.count + threads - 1) / threads
    parallelFor(threads) { thread in
      for _ in 0..<evictionPasses {
        for index in thread * share..<min(numbers.count, (thread + 1) * share) {
          numbers[index] += 1
        }
      }
    }
  }
}

/// Times a closure: each call of `seconds()` runs it enough times to take at least
/// `minimumSeconds` (counted once, after a warm-up call, over a tenth of it) and returns the
/// time per call.
struct RepeatedTimer {
  let body: () -> Void
  let repeats: Int

  init(minimumSeconds: Double = 0.02, _ body: @escaping () -> Void) {
    self.body = body
    // The first call pays for what is new (pages, scratch, threads waking): a count worked
    // out from it made the first shape measured a batch of a few calls, not of
    // `minimumSeconds` (128³: 36 calls, 1 ms). So a warm-up call, then calls for a tenth
    // of `minimumSeconds`; numpy's side counts the same way.
    body()
    var calls = 0
    let start = Self.now()
    repeat {
      body()
      calls += 1
    } while Self.now() - start < minimumSeconds / 10
    repeats = max(1, Int(minimumSeconds * Double(calls) / (Self.now() - start)))
  }

  func seconds() -> Double {
    let start = Self.now()
    for _ in 0..<repeats { body() }
    return (Self.now() - start) / Double(repeats)
  }

  static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}

/// A python3 process with numpy that times `x @ y` for the shapes it is sent, one at a time:
/// a batch with the operands in the caches, or, cold, one product after writing a 64 MiB
/// array (into a C made once, as ours).
final class NumpyTimer {
  /// The python3 process; it answers each shape with the seconds of one product.
  private let python: PythonLines
  /// `OPENBLAS_THREAD_TIMEOUT`: OpenBLAS's idle threads spin for 2^this many cycles.
  let threadTimeout: String

  static let script = """
    import sys, threading, time, numpy as np
    arrays = {}
    eviction = None
    for line in sys.stdin:
        m, k, n, ta, tb, cold = map(int, line.split())
        if (m, k, n, ta, tb) not in arrays:
            rng = np.random.default_rng(0)
            a = rng.uniform(-1, 1, (k, m) if ta else (m, k)).astype(np.float32)
            b = rng.uniform(-1, 1, (n, k) if tb else (k, n)).astype(np.float32)
            x, y = (a.T if ta else a), (b.T if tb else b)
            x @ y
            calls, start = 0, time.perf_counter()
            while calls == 0 or time.perf_counter() - start < 0.002:
                x @ y
                calls += 1
            once = (time.perf_counter() - start) / calls
            c = np.empty((m, n), dtype=np.float32)
            arrays[(m, k, n, ta, tb)] = (x, y, max(1, int(0.02 / once)), c)
        x, y, repeats, c = arrays[(m, k, n, ta, tb)]
        if cold:
            if eviction is None:
                eviction = np.zeros(\(evictionFloats), dtype=np.float32)
                halves = np.split(eviction, 2)
                waking = np.ones((128, 128), dtype=np.float32)
            evicting = [threading.Thread(target=lambda h=h: [np.add(h, 1, out=h) for _ in range(\(evictionPasses))]) for h in halves]
            for t in evicting: t.start()
            for t in evicting: t.join()
            waking @ waking
            start = time.perf_counter(); np.matmul(x, y, out=c)
            print(time.perf_counter() - start, flush=True)
            continue
        start = time.perf_counter()
        while time.perf_counter() - start < \(warmUpSeconds):  # untimed, as ours
            for _ in range(repeats): x @ y
        start = time.perf_counter()
        for _ in range(repeats): x @ y
        print((time.perf_counter() - start) / repeats, flush=True)
    """

  /// Starts python3 with numpy on `threads` threads, OpenBLAS held to the kernels of
  /// `coreType` if given (over an `OPENBLAS_CORETYPE` the environment sets: a machine here
  /// set Haswell for every process); nil if it is not there.
  init?(threads: Int, coreType: String? = nil) {
    var environment = ProcessInfo.processInfo.environment
    for variable in ["OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"] {
      environment[variable] = "\(threads)"
    }
    if let coreType { environment["OPENBLAS_CORETYPE"] = coreType }
    // OpenBLAS's idle threads spin for 2^28 cycles (about 0.1 s) after a product, and its
    // process kept a core busy for a third of the time ours were timed (seen with `top`
    // on the 2-core AMD EPYC Zen 4: python3 at 80% + 65% of a core, ours at 33%), which
    // halved some of our figures. 2^18 cycles (about 100 µs) is our pool's own spin.
    threadTimeout = environment["OPENBLAS_THREAD_TIMEOUT"] ?? "18"
    environment["OPENBLAS_THREAD_TIMEOUT"] = threadTimeout
    guard let python = PythonLines(["python3", "-c", Self.script], environment: environment)
    else { return nil }
    self.python = python
    // A first product tells whether numpy is there.
    if seconds(MatmulShape(m: 1, n: 1, k: 1)) == nil { return nil }
  }

  /// Seconds per `x @ y` for one timed batch, or for one product with the caches evicted
  /// (`cold`); nil if python has stopped.
  func seconds(_ shape: MatmulShape, cold: Bool = false) -> Double? {
    python.ask(
      "\(shape.m) \(shape.k) \(shape.n) \(shape.transposeA ? 1 : 0) \(shape.transposeB ? 1 : 0)"
        + " \(cold ? 1 : 0)"
    ).flatMap(Double.init)
  }
}
