import Foundation
import Testing

/// The package's root folder.
let packageRoot = URL(fileURLWithPath: #filePath)
  .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// What a finished process left behind.
struct ProcessResult {
  let status: Int32
  let output: String
  let error: String
}

/// A product of this package, built beside the test bundle.
func productURL(_ name: String) -> URL {
  let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
  let candidate = directory.appendingPathComponent(name)
  // The test bundle may be a folder (macOS) inside the products folder.
  if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
  return directory.deletingLastPathComponent().appendingPathComponent(name)
}

/// Runs a product of this package (built beside the test bundle) with `arguments`.
func runProduct(
  _ name: String, _ arguments: [String], environment: [String: String] = [:],
  directory: URL? = nil
) throws -> ProcessResult {
  let process = Process()
  process.executableURL = productURL(name)
  if let directory { process.currentDirectoryURL = directory }
  process.arguments = arguments
  process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
  let output = Pipe()
  let error = Pipe()
  process.standardOutput = output
  process.standardError = error
  try process.run()
  let outputData = output.fileHandleForReading.readDataToEndOfFile()
  let errorData = error.fileHandleForReading.readDataToEndOfFile()
  process.waitUntilExit()
  return ProcessResult(
    status: process.terminationStatus, output: String(decoding: outputData, as: UTF8.self),
    error: String(decoding: errorData, as: UTF8.self))
}

/// The text of a file in the package.
func packageFile(_ path: String) throws -> String {
  try String(contentsOf: packageRoot.appendingPathComponent(path), encoding: .utf8)
}

/// The code block that follows `marker` in a Markdown text, without its fences.
func codeBlock(after marker: String, in text: String) -> String? {
  guard let start = text.range(of: marker) else { return nil }
  let rest = text[start.upperBound...]
  guard let open = rest.range(of: "```"),
    let lineEnd = rest[open.upperBound...].firstIndex(of: "\n"),
    let close = rest[lineEnd...].range(of: "\n```")
  else { return nil }
  return String(rest[rest.index(after: lineEnd)..<close.lowerBound])
}

/// Whether two printouts say the same: equal text once numbers are set aside, and numbers
/// equal to within `tolerance` relative (or 1e-9 absolute), so that the last digit of a
/// printed rounding error may differ between platforms.
func sameOutput(_ a: String, _ b: String, tolerance: Double = 0.05) -> Bool {
  let pattern = try! NSRegularExpression(pattern: "-?[0-9]+(\\.[0-9]+)?(e[-+]?[0-9]+)?")
  func split(_ text: String) -> (String, [Double]) {
    let range = NSRange(text.startIndex..., in: text)
    let numbers = pattern.matches(in: text, range: range).map {
      Double((text as NSString).substring(with: $0.range))!
    }
    return (pattern.stringByReplacingMatches(in: text, range: range, withTemplate: "#"), numbers)
  }
  let (textA, numbersA) = split(a.trimmingCharacters(in: .whitespacesAndNewlines))
  let (textB, numbersB) = split(b.trimmingCharacters(in: .whitespacesAndNewlines))
  guard textA == textB, numbersA.count == numbersB.count else { return false }
  return zip(numbersA, numbersB).allSatisfy { x, y in
    abs(x - y) <= max(1e-9, tolerance * max(abs(x), abs(y)))
  }
}

/// A Mamba of one layer of width 8, pretrained 2 steps into `folder` by `tinymixer
/// pretrain`: a base the Mamba tests train experts and routers on in seconds.
func pretrainTinyMamba(into folder: URL) throws -> URL {
  let pretrain = try runProduct(
    "tinymixer",
    [
      "pretrain", "--architecture", "mamba", "--steps", "2", "--hidden", "8", "--layers", "1",
      "--batch", "4", "--out", folder.path, "--datasets", datasetsFolder,
    ])
  #expect(pretrain.status == 0, "\(pretrain.error)")
  return folder
}
