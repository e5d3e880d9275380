import Foundation

/// A problem with a dataset file, naming the file and line.
public struct DatasetError: Error, CustomStringConvertible, Equatable {
  /// The file.
  public let path: String
  /// The 1-based line, or nil for the file as a whole.
  public let line: Int?
  /// What is wrong.
  public let message: String

  public var description: String {
    line.map { "\(path):\($0): \(message)" } ?? "\(path): \(message)"
  }
}

/// Reading and writing a task split as tab-separated lines: `prompt<TAB>answer`.
///
/// Prompts and answers are words separated by single spaces; a word never contains a tab,
/// a space or a line break. The file ends with a line break.
public enum TaskFile {
  /// The examples in `text` (the contents of `path`), or the first problem found.
  public static func parse(_ text: String, path: String) throws -> [Example] {
    var examples: [Example] = []
    var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    if lines.last == "" {
      lines.removeLast()
    } else if !text.isEmpty {
      throw DatasetError(path: path, line: lines.count, message: "the last line has no line break")
    }
    for (index, line) in lines.enumerated() {
      let number = index + 1
      let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
      guard fields.count == 2 else {
        throw DatasetError(
          path: path, line: number,
          message:
            "expected 'prompt<TAB>answer', found \(fields.count) field\(fields.count == 1 ? "" : "s")"
        )
      }
      for (name, field) in [("prompt", fields[0]), ("answer", fields[1])] {
        if field.isEmpty { throw DatasetError(path: path, line: number, message: "empty \(name)") }
        if field.hasPrefix(" ") || field.hasSuffix(" ") || field.contains("  ")
          || field.contains("\r")
        {
          throw DatasetError(
            path: path, line: number, message: "\(name) must be words separated by single spaces")
        }
      }
      examples.append(Example(prompt: String(fields[0]), answer: String(fields[1])))
    }
    return examples
  }

  /// The examples of the file at `url`.
  public static func read(_ url: URL) throws -> [Example] {
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
      throw DatasetError(
        path: url.path, line: nil, message: "cannot read: \(error.localizedDescription)")
    }
    guard let text = String(data: data, encoding: .utf8) else {
      throw DatasetError(path: url.path, line: nil, message: "not valid UTF-8")
    }
    return try parse(text, path: url.path)
  }

  /// The file's contents for `examples`.
  public static func format(_ examples: [Example]) -> String {
    examples.map { "\($0.prompt)\t\($0.answer)\n" }.joined()
  }
}
