import Autodiff
import Foundation
import Kernels
import NN

/// Training steps of the bench model on a fixed random batch: median time, throughput,
/// effective GFLOP/s and peak memory, and optionally the time per operation.
struct TrainingBenchmark {
  let runs: Int
  let profile: Bool
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

  /// `tinymixer bench train-base`: forward, backward and AdamW on every parameter.
  func runBase() {
    let model = LlamaForCausalLM(configuration, seed: 0)
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
    let seconds = medianSeconds(runs: runs, minimumSeconds: 0) { step(Tape()) }
    report(
      "train-base: one AdamW training step of the bench model, every parameter trained",
      seconds: seconds, parameters: model.parameterCount, trained: model.parameterCount)
    if profile {
      let tape = Tape(profiling: true)
      step(tape)
      printProfile(tape.profile!, optimizer: optimizerTime)
    }
  }

  func report(_ title: String, seconds: Double, parameters: Int, trained: Int) {
    let flops = configuration.trainingFlops(batch: batch, length: length)
    let tokens = Double(batch * length)
    print(title)
    print(
      "model: vocabulary \(configuration.vocabularySize), width \(configuration.hiddenSize), \(configuration.layers) layers of \(configuration.heads) heads, MLP \(configuration.intermediateSize), context \(length); batch \(batch) (\(Int(tokens)) tokens); \(parameters) parameters, \(trained) trained"
    )
    print("threads: \(Parallelism.threadCount), median of \(runs) steps\n")
    print(String(format: "%.1f ms/step", seconds * 1000))
    print(String(format: "%.0f tokens/s", tokens / seconds))
    print(
      String(
        format: "%.1f effective GFLOP/s (%.2f GFLOP of model work per step)", flops / seconds / 1e9,
        flops / 1e9))
    print(String(format: "%.0f MiB peak memory (resident)", peakResidentMegabytes()))
  }

  func printProfile(_ profile: OperationProfile, optimizer: UInt64) {
    var table = Table(
      ["operation", "count", "forward ms", "backward ms", "total ms"], rightAligned: [1, 2, 3, 4])
    let rows = profile.entries.sorted {
      $0.value.forward + $0.value.backward > $1.value.forward + $1.value.backward
    }
    var total: UInt64 = optimizer
    for (name, entry) in rows {
      total += entry.forward + entry.backward
      table.add([
        name, "\(entry.count)", String(format: "%.2f", Double(entry.forward) / 1e6),
        String(format: "%.2f", Double(entry.backward) / 1e6),
        String(format: "%.2f", Double(entry.forward + entry.backward) / 1e6),
      ])
    }
    table.add(["optimizer (AdamW)", "1", "", "", String(format: "%.2f", Double(optimizer) / 1e6)])
    print(
      "\nwhere one step's time goes (one profiled step; forward time runs from one record to the next):\n"
    )
    print(table.rendered)
    print(String(format: "\n%.1f ms in all", Double(total) / 1e6))
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
