import Foundation

/// A python process spoken to in lines, a request in and an answer out: numpy's timer
/// beside `bench matmul` and PyTorch's step beside `bench train-base|train-mixer`.
final class PythonLines {
  private let process = Process()
  private let input = Pipe()
  private let output = Pipe()
  /// What python has printed and `readLine` has not returned yet.
  private var pending = Data()

  /// Starts `arguments` (the python, a path or a name looked up in PATH, then its own
  /// arguments) with `environment` (this process's if nil); nil if it cannot be started.
  /// Its standard error is dropped.
  init?(_ arguments: [String], environment: [String: String]? = nil) {
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    if let environment { process.environment = environment }
    process.standardInput = input
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    // A python that stops (without numpy or torch, say) must not take this process with
    // it: a write to its pipe then fails instead of raising SIGPIPE.
    signal(SIGPIPE, SIG_IGN)
    do { try process.run() } catch { return nil }
  }

  deinit {
    try? input.fileHandleForWriting.close()
    process.waitUntilExit()
  }

  /// Sends `line` and returns python's next line, or nil if python has stopped.
  func ask(_ line: String) -> String? {
    do { try input.fileHandleForWriting.write(contentsOf: Data((line + "\n").utf8)) } catch {
      return nil
    }
    return readLine()
  }

  /// Python's next line, or nil at its end.
  func readLine() -> String? {
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
