import Autodiff
import Experiments
import Foundation
import Kernels
import LoRAMixer
import NN
import Random

/// Training steps of the bench model on a fixed random batch: median time, throughput,
/// effective GFLOP/s and peak memory, and optionally the time per operation.
struct TrainingBenchmark {
  let runs: Int
  let profile: Bool
  /// PyTorch's steps of the same model, each timed in turns with ours (`--pytorch`): the
  /// base's step, or the mixture's in its two forms (`pytorch_step.py mixer`, every expert's
  /// output formed, and `mixer-stacked`, the experts stacked as ours are).
  var pytorch: [PyTorchStep] = []
  let batch = 32
  var configuration: LlamaConfiguration { .bench }
  var length: Int { configuration.contextLength }

  /// A fixed random batch: `batch` rows of `length + 1` tokens; inputs are each row's first
  /// `length` tokens and targets the next ones, all of them scored.
  func randomBatch() -> (tokens: [Int], targets: [Int]) {
    var generator = SeededGenerator(seed: 7)
    var tokens: [Int] = []
    var targets: [Int] = []
    for _ in 0..<batch {
      let row = (0...length).map { _ in generator.nextInt(below: configuration.vocabularySize) }
      tokens += row.dropLast()
      targets += row.dropFirst()
    }
    return (tokens, targets)
  }

  /// The bench model's Mamba counterpart: the same vocabulary, width, depth and context;
  /// state 16, expansion 2, 4 convolution taps (Hugging Face's defaults).
  var mambaConfiguration: MambaConfiguration {
    MambaConfiguration(
      vocabularySize: configuration.vocabularySize, hiddenSize: configuration.hiddenSize,
      layers: configuration.layers, contextLength: configuration.contextLength)
  }

  /// `tinymixer bench train-base` (or `train-mamba`, the same step on the Mamba): forward,
  /// backward and AdamW on every parameter.
  func runBase(mamba: Bool = false) {
    let model: any CausalLanguageModel =
      mamba
      ? MambaForCausalLM(mambaConfiguration, seed: 0) : LlamaForCausalLM(configuration, seed: 0)
    let optimizer = AdamW(parameters: model.namedParameters().map(\.tensor))
    let (tokens, targets) = randomBatch()
    let mask = [Bool](repeating: true, count: tokens.count)
    func step(_ tape: Tape) {
      let loss = tape.record {
        model.loss(tokens: tokens, targets: targets, mask: mask, batch: batch, length: length)
      }
      let gradients = tape.gradients(of: loss)
      let started = DispatchTime.now().uptimeNanoseconds
      optimizer.update(optimizer.parameters.map { gradients[$0]! }, learningRate: 1e-4)
      optimizerTime = DispatchTime.now().uptimeNanoseconds - started
    }
    var optimizerTime: UInt64 = 0
    let (seconds, theirs) = measure { step(Tape()) }
    report(
      mamba
        ? "train-mamba: one AdamW training step of the bench model's Mamba (state 16, expansion 2, 4 taps), every parameter trained"
        : "train-base: one AdamW training step of the bench model, every parameter trained",
      seconds: seconds, parameters: model.parameterCount, trained: model.parameterCount,
      mamba: mamba)
    reportPyTorch(theirs, ours: seconds)
    if profile {
      let tape = Tape(profiling: true)
      step(tape)
      printProfile(tape.profile!, optimizer: optimizerTime)
      printProductProfile(timingProducts(step), steps: productSteps)
    }
  }

  /// `tinymixer bench train-mixer`: the base frozen, six rank-8 experts (α 16) at q, k, v, o
  /// of every layer and a router per site, hard-soft top-2 routing and RSL (α 0.01, λ 0.01,
  /// spread); forward, backward and AdamW on the experts and routers.
  func runMixer() {
    let model = LlamaForCausalLM(configuration, seed: 0)
    let rank = 8
    let experts = (0..<6).map { index in
      let adapters = attachLoRA(to: model, rank: rank, alpha: 16, seed: UInt64(10 + index))
      return (
        name: "expert\(index)",
        adapters: Dictionary(uniqueKeysWithValues: adapters.map { ($0.path, $0.adapter) })
      )
    }
    let mixture = Mixture(
      model: model, experts: experts, settings: RoutingSettings(mode: .hardsoft, k: 2), seed: 1)
    for (_, tensor) in mixture.expertParameters() { tensor.requiresGradient = true }
    let parameters = (mixture.routerParameters() + mixture.expertParameters()).map(\.tensor)
    let optimizer = AdamW(parameters: parameters)
    let (tokens, targets) = randomBatch()
    let mask = [Bool](repeating: true, count: tokens.count)
    let rsl = RoutingLossSettings(kind: .rsl, entropy: .spread, alpha: 0.01, lambda: 0.01)
    func step(_ tape: Tape) {
      let loss = tape.record {
        let (task, routings) = mixture.routing.run(.training) {
          model.loss(tokens: tokens, targets: targets, mask: mask, batch: batch, length: length)
        }
        return task + routingLoss(Mixture.lossInputs(routings), tokens: nil, settings: rsl).loss
      }
      let gradients = tape.gradients(of: loss)
      let started = DispatchTime.now().uptimeNanoseconds
      optimizer.update(parameters.map { gradients[$0]! }, learningRate: 1e-4)
      optimizerTime = DispatchTime.now().uptimeNanoseconds - started
    }
    var optimizerTime: UInt64 = 0
    let (seconds, theirs) = measure { step(Tape()) }
    report(
      "train-mixer: one AdamW step of the bench model's mixture: base frozen, 6 experts (rank 8, alpha 16) at q, k, v, o of every layer, a router per site, hardsoft top-2, RSL (alpha 0.01, lambda 0.01, spread)",
      seconds: seconds, parameters: model.parameterCount + mixture.addedParameterCount,
      trained: parameters.reduce(0) { $0 + $1.count },
      flops: mixtureFlops(sites: mixture.sites.count, experts: experts.count, rank: rank))
    reportPyTorch(theirs, ours: seconds)
    if profile {
      let tape = Tape(profiling: true)
      step(tape)
      printProfile(tape.profile!, optimizer: optimizerTime)
      printProductProfile(timingProducts(step), steps: productSteps)
    }
  }

  /// Steps whose products `--profile` times: one step's times of a product vary by half
  /// from step to step (the bench mixture's `x · Aᵀ`, 16 products: 1.2 to 2.3 ms, native
  /// build, AMD EPYC Zen 5).
  let productSteps = 5

  /// `productSteps` steps of `step` with every product timed, after an untimed one: the
  /// step after the profiled one finds the memory the profiled tape held given back, and
  /// its first writes fault in fresh pages (the bench mixture's step took 66 ms so, against
  /// 41 after an untimed step; native build, AMD EPYC Zen 5).
  func timingProducts(_ step: (Tape) -> Void) -> [String: MatmulProfile.Entry] {
    step(Tape())
    return MatmulProfile.recording {
      for _ in 0..<productSteps { step(Tape()) }
    }
  }

  /// The median seconds of `step` over `runs` steps, after one untimed step; with `pytorch`,
  /// also each PyTorch step's, timed in turns: each run, one untimed and one timed step of
  /// ours, then the same of each of PyTorch's (nil for one that stopped).
  func measure(_ step: @escaping () -> Void) -> (ours: Double, theirs: [Double?]) {
    guard !pytorch.isEmpty else {
      return (medianSeconds(runs: runs, minimumSeconds: 0, step), [])
    }
    func median(_ times: [Double]) -> Double { times.sorted()[times.count / 2] }
    var ours: [Double] = []
    var theirs = [[Double]](repeating: [], count: pytorch.count)
    for _ in 0..<runs {
      step()
      let start = DispatchTime.now().uptimeNanoseconds
      step()
      ours.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
      for (index, peer) in pytorch.enumerated() {
        if let seconds = peer.stepSeconds() { theirs[index].append(seconds) }
      }
    }
    return (median(ours), theirs.map { $0.count == runs ? median($0) : nil })
  }

  /// Each PyTorch step's median beside ours, when it was timed.
  func reportPyTorch(_ theirs: [Double?], ours: Double) {
    for (peer, median) in zip(pytorch, theirs) {
      guard let median else {
        print("\nPyTorch: stopped before the last run (\(peer.about))")
        continue
      }
      print(
        "\n\(peer.about), timed in turns with ours, step by step (Benchmarks/pytorch_step.py):")
      print(
        String(format: "%.1f ms/step; ours takes %.2f of its time", median * 1000, ours / median))
    }
  }

  /// Floating-point operations of a step of the mixture, counted as `trainingFlops` counts
  /// the base's (two per multiply-add of every product, every input's gradient included):
  /// the frozen base's forward and its inputs' gradients (one product per Linear, four for
  /// attention's two), and at each of `sites` routed sites the router's and the experts'
  /// products forward and their gradients (the weighting of the experts' ranks,
  /// `weightedRanks`, is a product of elements, not counted, as the base's are not). The
  /// bench's sites are q, k, v and o, each width × width, with all `experts` present.
  func mixtureFlops(sites: Int, experts: Int, rank: Int) -> Double {
    let forward = configuration.forwardFlops(batch: batch, length: length)
    let (tokens, width) = (Double(batch * length), Double(configuration.hiddenSize))
    let attention = configuration.attentionFlops(batch: batch, length: length)
    let stacked = Double(experts * rank)
    // A site's x · A_allᵀ, (…) · B_allᵀ and router, each forward and two gradients.
    let products = 2 * tokens * (2 * width * stacked + width * Double(experts))
    return forward + (forward + attention) + Double(sites) * 3 * products
  }

  /// Prints the step's time, throughput, effective GFLOP/s over `flops` (the base's
  /// training step's count when nil; none for the Mamba) and peak memory under `title`.
  func report(
    _ title: String, seconds: Double, parameters: Int, trained: Int, mamba: Bool = false,
    flops: Double? = nil
  ) {
    let flops = flops ?? configuration.trainingFlops(batch: batch, length: length)
    let tokens = Double(batch * length)
    print(title)
    let layers =
      mamba
      ? "\(configuration.layers) Mamba blocks"
      : "\(configuration.layers) layers of \(configuration.heads) heads, MLP \(configuration.intermediateSize)"
    print(
      "model: vocabulary \(configuration.vocabularySize), width \(configuration.hiddenSize), \(layers), context \(length); batch \(batch) (\(Int(tokens)) tokens); \(parameters) parameters, \(trained) trained"
    )
    print("threads: \(Parallelism.threadCount), median of \(runs) steps\n")
    print(String(format: "%.1f ms/step", seconds * 1000))
    print(String(format: "%.0f tokens/s", tokens / seconds))
    if !mamba {  // the count of operations is the transformer's
      print(
        String(
          format: "%.1f effective GFLOP/s (%.2f GFLOP of model work per step)",
          flops / seconds / 1e9, flops / 1e9))
    }
    print(String(format: "%.0f MiB peak memory (resident)", peakResidentMegabytes()))
  }

  func printProfile(_ profile: OperationProfile, optimizer: UInt64) {
    printOperationProfile(
      profile, optimizer: optimizer,
      heading:
        "where one step's time goes (one profiled step; forward time runs from one record to the next):"
    )
  }
}

/// `profile` as a table, operations by total time, then the optimizer's time if given and
/// the sum, under `heading`.
func printOperationProfile(_ profile: OperationProfile, optimizer: UInt64?, heading: String) {
  var table = Table(
    ["operation", "count", "forward ms", "backward ms", "total ms"], rightAligned: [1, 2, 3, 4])
  let rows = profile.entries.sorted {
    $0.value.forward + $0.value.backward > $1.value.forward + $1.value.backward
  }
  var total: UInt64 = optimizer ?? 0
  for (name, entry) in rows {
    total += entry.forward + entry.backward
    table.add([
      name, "\(entry.count)", String(format: "%.2f", Double(entry.forward) / 1e6),
      String(format: "%.2f", Double(entry.backward) / 1e6),
      String(format: "%.2f", Double(entry.forward + entry.backward) / 1e6),
    ])
  }
  if let optimizer {
    table.add(["optimizer (AdamW)", "1", "", "", String(format: "%.2f", Double(optimizer) / 1e6)])
  }
  print("\n\(heading)\n")
  print(table.rendered)
  print(String(format: "\n%.1f ms in all", Double(total) / 1e6))
}

/// A step's products by shape, most time first: how many, their time and their speed, and
/// the sum of those not run inside another kernel's tasks. Compared with `bench matmul --shape`,
/// it shows which products lose speed inside the step. A product run inside another
/// kernel's parallel tasks (attention's) is marked `*`: its time is summed over the
/// threads, so its speed is one thread's.
func printProductProfile(_ entries: [String: MatmulProfile.Entry], steps: Int) {
  var table = Table(["product", "count", "ms", "GFLOP/s"], rightAligned: [1, 2, 3])
  for (shape, entry) in entries.sorted(by: { $0.value.nanoseconds > $1.value.nanoseconds }) {
    table.add([
      shape + (entry.inTasks ? " *" : ""), "\(entry.count / steps)",
      String(format: "%.2f", Double(entry.nanoseconds) / 1e6 / Double(steps)),
      String(format: "%.1f", entry.flops / Double(entry.nanoseconds)),
    ])
  }
  let outside = entries.values.filter { !$0.inTasks }
  let (time, flops) = (
    Double(outside.reduce(0) { $0 + $1.nanoseconds }), outside.reduce(0) { $0 + $1.flops }
  )
  print("\na step's products by shape (every product timed, the mean of \(steps) more steps):\n")
  print(table.rendered)
  if outside.count == entries.count {
    print(
      String(
        format: "\n%.1f ms in products, %.1f GFLOP/s", time / 1e6 / Double(steps), flops / time))
  } else {
    print(
      String(
        format: "\n%.1f ms in the products not marked *, %.1f GFLOP/s; * run inside another "
          + "kernel's tasks, a thread each: time summed over threads, speed per thread",
        time / 1e6 / Double(steps), flops / time))
  }
}

/// The largest resident memory this process has had, in MiB.
func peakResidentMegabytes() -> Double {
  var usage = rusage()
  #if os(Linux)
    getrusage(RUSAGE_SELF.rawValue, &usage)
  #else
    getrusage(RUSAGE_SELF, &usage)
  #endif
  #if os(Linux)
    return Double(usage.ru_maxrss) / 1024  // kilobytes on Linux
  #else
    return Double(usage.ru_maxrss) / 1024 / 1024  // bytes on macOS
  #endif
}
