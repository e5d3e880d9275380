import Experiments
import Foundation

/// PyTorch's eager training step of the bench model, in a python process that runs a step
/// when asked (`Benchmarks/pytorch_step.py --serve`), so that `bench train-base` and
/// `train-mixer` can time it in turns with their own, step by step: a slow minute on a
/// shared machine then slows both sides of the ratio alike, where two runs minutes apart
/// can differ by 30% on their own.
final class PyTorchStep {
  let process = Process()
  let input = Pipe()
  let output = Pipe()
  var pending = Data()
  /// What python said of itself: torch's version, its threads, the parameters it trains.
  private(set) var about = ""

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
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [python, script.path, what, "--threads", "\(threads)", "--serve"]
    process.standardInput = input
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    signal(SIGPIPE, SIG_IGN)  // a python that stops must not take this process with it
    let failed = ToolError.usage(
      "--pytorch: '\(python)' could not run \(script.path) (it needs torch and transformers)")
    do { try process.run() } catch { throw failed }
    guard let line = readLine() else { throw failed }
    about = line
  }

  deinit {
    try? input.fileHandleForWriting.close()
    process.waitUntilExit()
  }

  /// The seconds of one step, run after one untimed step (as ours are), or nil if python
  /// has stopped.
  func stepSeconds() -> Double? {
    do { try input.fileHandleForWriting.write(contentsOf: Data("2\n".utf8)) } catch {
      return nil
    }
    return readLine().flatMap(Double.init)
  }

  /// The next line python prints, or nil at its end.
  private func readLine() -> String? {
    while !pending.contains(UInt8(ascii: "\n")) {
      let chunk = output.fileHandleForReading.availableData
      if chunk.isEmpty { return nil }
      pending.append(chunk)
    }
    let end = pending.firstIndex(of: UInt8(ascii: "\n"))!
    let line = String(decoding: pending[..<end], as: UTF8.self)
    pending.removeSubrange(...end)
    return line
  }
}
