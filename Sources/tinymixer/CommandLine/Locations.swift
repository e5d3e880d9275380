import Foundation
import ToyTasks

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
    return ToyTask.datasetsFolder(sourceRoot: sourceRoot)
  }

  /// The pretrained bases shipped with the sources, each named by its recipe's fingerprint:
  /// `./Models` if the working directory has one, else the source tree's.
  static var shippedBases: URL { packageFolder("Models", sourceRoot: sourceRoot) }

  /// The package folder this binary was built from.
  static let sourceRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

  /// Where a task's stage-1 expert is kept: `runs/<task>/adapter`, with the sites and seed
  /// appended when they are not the defaults (all, 0).
  static func expertFolder(
    _ task: ToyTask, sites: String = "all", seed: UInt64 = 0,
    runs: URL = URL(fileURLWithPath: "runs")
  ) -> URL {
    let suffix = (sites == "all" ? "" : "-\(sites)") + (seed == 0 ? "" : "-seed\(seed)")
    return runs.appendingPathComponent("\(task.name)/adapter\(suffix)")
  }

  /// `--datasets DIR`.
  static let datasetsOption = Option(
    name: "datasets", valueName: "DIR", help: "the task files (default: ./Datasets)")
}
