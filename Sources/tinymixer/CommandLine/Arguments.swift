import Experiments
import Foundation
import SafeTensors

/// The output folders this run holds, released when the command ends.
nonisolated(unsafe) var heldFolders: [FolderLock] = []

/// One option a command accepts: `--name VALUE`, or a flag `--name` when `valueName` is nil.
struct Option {
  let name: String
  let valueName: String?
  let help: String

  /// `--threads N`, the number of threads for the kernels.
  static let threads = Option(
    name: "threads", valueName: "N", help: "threads for the kernels (default: all cores)")
  /// `--overwrite`, to replace an existing output.
  static let overwrite = Option(
    name: "overwrite", valueName: nil, help: "replace the output if it exists")
  /// `--seed N`, the seed of every random choice.
  static let seed = Option(name: "seed", valueName: "N", help: "random seed (default: 0)")
}

/// The words after a command's name: positional arguments and option values.
///
/// Options are `--name VALUE`, `--name=VALUE` or, for flags, `--name`. An option the
/// command does not accept, a missing value or a repeated option is a usage error.
struct Arguments {
  private(set) var positionals: [String] = []
  private var values: [String: String] = [:]
  private var flags: Set<String> = []

  init(_ words: [String], accepting options: [Option]) throws {
    var index = 0
    while index < words.count {
      let word = words[index]
      index += 1
      guard word.hasPrefix("--"), word.count > 2 else {
        if word.hasPrefix("-") && word.count > 1 && Double(word) == nil {
          throw ToolError.usage("unknown option '\(word)'")
        }
        positionals.append(word)
        continue
      }
      var name = String(word.dropFirst(2))
      var inlineValue: String? = nil
      if let equals = name.firstIndex(of: "=") {
        inlineValue = String(name[name.index(after: equals)...])
        name = String(name[..<equals])
      }
      guard let option = options.first(where: { $0.name == name }) else {
        throw ToolError.usage("unknown option '--\(name)'")
      }
      if values[name] != nil || flags.contains(name) {
        throw ToolError.usage("option '--\(name)' given twice")
      }
      if option.valueName == nil {
        if inlineValue != nil { throw ToolError.usage("option '--\(name)' takes no value") }
        flags.insert(name)
      } else if let inlineValue {
        values[name] = inlineValue
      } else {
        guard index < words.count, !words[index].hasPrefix("--") else {
          throw ToolError.usage("option '--\(name)' needs a value")
        }
        values[name] = words[index]
        index += 1
      }
    }
  }

  /// Whether the flag `--name` was given.
  func has(_ name: String) -> Bool { flags.contains(name) }

  /// The value of `--name`, if given.
  func string(_ name: String) -> String? { values[name] }

  /// The integer value of `--name`, or `defaultValue`; a usage error outside `range`.
  func integer(_ name: String, default defaultValue: Int, in range: ClosedRange<Int> = 0...Int.max)
    throws -> Int
  {
    guard let text = values[name] else { return defaultValue }
    guard let value = Int(text), range.contains(value) else {
      let bounds =
        range.upperBound == Int.max
        ? "at least \(range.lowerBound)" : "in \(range.lowerBound)...\(range.upperBound)"
      throw ToolError.usage("--\(name) needs a whole number \(bounds), got '\(text)'")
    }
    return value
  }

  /// The number value of `--name`, or `defaultValue`; a usage error outside `range`.
  func number(
    _ name: String, default defaultValue: Double,
    in range: ClosedRange<Double> = -Double.infinity...Double.infinity
  ) throws -> Double {
    guard let text = values[name] else { return defaultValue }
    guard let value = Double(text), value.isFinite, range.contains(value) else {
      throw ToolError.usage(
        "--\(name) needs a number in \(range.lowerBound)...\(range.upperBound), got '\(text)'")
    }
    return value
  }

  /// Fails with a usage error unless there are between `minimum` and `maximum` positionals.
  /// The value of `--name` as one of `Choice`'s cases (by raw value), or `defaultValue`.
  func choice<Choice: RawRepresentable & CaseIterable>(_ name: String, default defaultValue: Choice)
    throws -> Choice where Choice.RawValue == String
  {
    guard let text = values[name] else { return defaultValue }
    guard let value = Choice(rawValue: text) else {
      let allowed = Choice.allCases.map(\.rawValue).joined(separator: ", ")
      throw ToolError.usage("--\(name): '\(text)' is not one of \(allowed)")
    }
    return value
  }

  /// Refuses, unless `--overwrite` was given, when `folder` already holds `file` (an
  /// earlier run's `what`), and fails at once when `folder` cannot be written, before any
  /// training; then holds it for this run (`claim`).
  func refuseToOverwrite(_ folder: URL, holding file: String, what: String) throws {
    try claim(folder)
    if !has("overwrite"),
      FileManager.default.fileExists(atPath: folder.appendingPathComponent(file).path)
    {
      throw ToolError.usage("\(folder.path) already holds \(what); pass --overwrite to replace it")
    }
  }

  /// Checks that `folder` can be written, before any training, and holds it for this run
  /// (`FolderLock`) until the command ends: a second run into the same folder is refused,
  /// told which process has it.
  func claim(_ folder: URL) throws {
    do { try checkWritable(folder) } catch { throw ToolError.failure("\(error)") }
    do { heldFolders.append(try FolderLock(folder)) } catch let error as FolderInUseError {
      throw ToolError.busy(error.description)
    } catch { throw ToolError.failure("\(error)") }
  }

  func expectPositionals(_ minimum: Int, _ maximum: Int, _ what: String) throws {
    if positionals.count < minimum { throw ToolError.usage("missing \(what)") }
    if positionals.count > maximum {
      throw ToolError.usage("unexpected argument '\(positionals[maximum])'")
    }
  }
}
