import Foundation
import ToyTasks

/// Where the tool finds the shipped bases and keeps the experts it trains.
public enum Locations {
  /// The pretrained bases shipped with the sources, each named by its recipe's fingerprint:
  /// `./Models` if the working directory has one, else the source tree's.
  public static var shippedBases: URL { packageFolder("Models", sourceRoot: sourceRoot) }

  /// The package folder this binary was built from.
  public static let sourceRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

  /// Where a task's stage-1 expert is kept: `runs/<task>/adapter`, with the sites and seed
  /// appended when they are not the defaults (all, 0).
  public static func expertFolder(
    _ task: ToyTask, sites: String = "all", seed: UInt64 = 0,
    runs: URL = URL(fileURLWithPath: "runs")
  ) -> URL {
    let suffix = (sites == "all" ? "" : "-\(sites)") + (seed == 0 ? "" : "-seed\(seed)")
    return runs.appendingPathComponent("\(task.name)/adapter\(suffix)")
  }
}
