import Experiments
import Foundation

/// PyTorch's eager training step of the bench model, in a python process that runs a step
/// when asked (`Benchmarks/pytorch_step.py --serve`), so that `bench train-base` and
/// `train-mixer` can time it in turns with their own, step by step: a slow minute on a
/// shared machine then slows both sides of the ratio alike, where two runs minutes apart
/// can differ by 30% on their own.
final class PyTorchStep {
  /// The python process; it answers each request with the seconds of a step.
  private let python: PythonLines
  /// What python said of itself: torch's version, its threads, the parameters it trains.
  let about: String

  /// Starts `python` (a path, or a name looked up in PATH) on
  /// `Benchmarks/pytorch_step.py <what>` in the current directory with `threads` threads,
  /// and waits for its warm-up. A usage error if the script is not there or python cannot
  /// run it (it needs torch and transformers).
  init(python: String, what: String, threads: Int) throws {
    let script = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
      .appendingPathComponent("Benchmarks/pytorch_step.py")
    guard FileManager.default.fileExists(atPath: script.path) else {
      throw ToolError.usage(
        "--pytorch: \(script.path) not found; run the bench from the package's folder")
    }
    guard
      let process = PythonLines([
        python, script.path, what, "--threads", "\(threads)", "--serve",
      ]),
      let about = process.readLine()
    else {
      throw ToolError.usage(
        "--pytorch: '\(python)' could not run \(script.path) (it needs torch and transformers)")
    }
    (self.python, self.about) = (process, about)
  }

  /// The seconds of one step, run after one untimed step (as ours are), or nil if python
  /// has stopped.
  func stepSeconds() -> Double? { python.ask("2").flatMap(Double.init) }
}
