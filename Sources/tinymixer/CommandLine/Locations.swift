import Experiments
import Foundation
import ToyTasks

extension Locations {
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

  /// `--datasets DIR`.
  static let datasetsOption = Option(
    name: "datasets", valueName: "DIR", help: "the task files (default: ./Datasets)")
}
