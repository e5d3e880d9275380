import Foundation

/// Where the tool finds its datasets and keeps its cache and outputs.
enum Locations {
  /// The `Datasets` folder: `--datasets DIR` if given, else `./Datasets`, else the one in
  /// the source tree this binary was built from.
  static func datasets(_ arguments: Arguments) throws -> URL {
    if let path = arguments.string("datasets") {
      let url = URL(fileURLWithPath: path)
      guard FileManager.default.fileExists(atPath: url.path) else {
        throw ToolError.usage("--datasets: no folder at '\(path)'")
      }
      return url
    }
    let local = URL(fileURLWithPath: "Datasets")
    if FileManager.default.fileExists(atPath: local.path) { return local }
    return sourceRoot.appendingPathComponent("Datasets")
  }

  /// The package folder this binary was built from.
  static let sourceRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

  /// Where pretrained base models are cached: `$TINYMIXER_CACHE`, else
  /// `$XDG_CACHE_HOME/tinymixer`, else `~/.cache/tinymixer`.
  static var cache: URL {
    let environment = ProcessInfo.processInfo.environment
    if let path = environment["TINYMIXER_CACHE"], !path.isEmpty {
      return URL(fileURLWithPath: path)
    }
    if let path = environment["XDG_CACHE_HOME"], !path.isEmpty {
      return URL(fileURLWithPath: path).appendingPathComponent("tinymixer")
    }
    return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(
      ".cache/tinymixer")
  }

  /// `--datasets DIR`.
  static let datasetsOption = Option(
    name: "datasets", valueName: "DIR", help: "the task files (default: ./Datasets)")
}
