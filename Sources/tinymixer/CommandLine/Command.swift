import Experiments
import Foundation
import Kernels
import LoRAMixer
import SafeTensors
import Training

/// A subcommand of `tinymixer`.
protocol Command {
  /// The word that selects it, for example `gradcheck`.
  static var name: String { get }
  /// One line for `tinymixer --help`.
  static var summary: String { get }
  /// The synopsis, for example `tinymixer gradcheck [--filter TEXT]`.
  static var synopsis: String { get }
  /// Options beyond `--help`.
  static var options: [Option] { get }
  /// Does the work; returns the exit status (0 when all went well, 1 when it did not).
  static func run(_ arguments: Arguments) throws -> Int32
}

/// The commands, in the order `--help` lists them.
var commands: [any Command.Type] {
  [
    TrainCommand.self, MixCommand.self, ReproduceCommand.self, RouteCommand.self, EvalCommand.self,
    PretrainCommand.self,
    DatasetsCommand.self,
    GradcheckCommand.self, DebugStateCommand.self,
    BenchCommand.self,
  ]
}

/// Runs the tool on `words` (the arguments after the program name); returns the exit status.
func runTool(_ words: [String]) -> Int32 {
  guard let first = words.first, first != "--help", first != "-h", first != "help" else {
    print(toolHelp())
    return words.isEmpty ? 2 : 0
  }
  guard let command = commands.first(where: { $0.name == first }) else {
    printError(
      "unknown command '\(first)'. Commands: \(commands.map { $0.name }.joined(separator: ", ")).")
    return 2
  }
  let rest = Array(words.dropFirst())
  if rest.contains("--help") || rest.contains("-h") {
    print(help(for: command))
    return 0
  }
  defer { heldFolders.removeAll() }
  do {
    let arguments = try Arguments(rest, accepting: command.options)
    if let threads = arguments.string("threads") {
      // A worker thread per count: past a few hundred there is nothing to gain on any
      // machine, and a mistyped number would start that many threads.
      guard let count = Int(threads), (1...256).contains(count) else {
        throw ToolError.usage("--threads needs a whole number from 1 to 256, got '\(threads)'")
      }
      Parallelism.threadCount = count
    }
    return try command.run(arguments)
  } catch let error as TrainingError {
    printError(error.description)
    if case .interrupted = error { return 130 }
    return 1
  } catch let error as ToolError {
    printError(error.description)
    if case .usage = error {
      FileHandle.standardError.write(
        Data("usage: \(command.synopsis)\n(see 'tinymixer \(command.name) --help')\n".utf8))
    }
    return error.exitStatus
  } catch {
    printError(describe(error))
    return 1
  }
}

/// One line for an error from Foundation or the system: the file it concerns and the
/// system's reason, when it names a file.
func describe(_ error: Error) -> String {
  let nsError = error as NSError
  guard let path = nsError.userInfo[NSFilePathErrorKey] as? String else { return "\(error)" }
  // Foundation's file error codes: reading from 256, writing from 512.
  return "cannot \(nsError.code >= 512 ? "write" : "read") \(path): \(systemReason(error))"
}

/// Writes `message` to standard error, prefixed with `tinymixer: error:`.
func printError(_ message: String) {
  FileHandle.standardError.write(Data("tinymixer: error: \(message)\n".utf8))
}

func toolHelp() -> String {
  let width = commands.map { $0.name.count }.max() ?? 0
  let lines = commands.map {
    "  \($0.name.padding(toLength: width + 2, withPad: " ", startingAt: 0))\($0.summary)"
  }
  return """
    tinymixer: reverse-mode autodiff, a tiny Llama, LoRA experts and the LoRA-Mixer router, in Swift.

    usage: tinymixer <command> [options]

    commands:
    \(lines.joined(separator: "\n"))

    'tinymixer <command> --help' describes a command.
    """
}

func help(for command: any Command.Type) -> String {
  let options = command.options + [Option(name: "help", valueName: nil, help: "show this help")]
  let labels = options.map { "--\($0.name)" + ($0.valueName.map { " \($0)" } ?? "") }
  let width = labels.map(\.count).max() ?? 0
  let lines = zip(labels, options).map {
    "  \($0.padding(toLength: width + 2, withPad: " ", startingAt: 0))\($1.help)"
  }
  return
    "\(command.summary)\n\nusage: \(command.synopsis)\n\noptions:\n\(lines.joined(separator: "\n"))"
}
