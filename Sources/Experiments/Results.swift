import Foundation
import SafeTensors
import Training

/// What one run of the reproduction measured, with what made it.
public struct RunRecord: Codable {
  /// The run's name: its whole configuration, so equal configurations share one run.
  public var id: String
  /// The command that made it (`tinymixer reproduce`, with `--quick` if so), and the
  /// standalone command that trains and measures the same thing.
  public var command: String
  /// The standalone command (or, where there is none, what the run did).
  public var equivalent: String
  /// The seed of the run (data order, initial weights).
  public var seed: Int
  /// Wall-clock seconds the run took.
  var seconds: Double
  /// Test accuracy by task name.
  public var accuracy: [String: Double] = [:]
  /// Training loss per step (the task loss for mixtures), thinned to at most 200 points.
  var losses: [Double] = []
  /// Mixtures: each expert's share of the selections over a mixed evaluation set (the
  /// global load), and, per task, each expert's share of first choices on its tokens.
  var load: [Double]? = nil
  var activation: [String: [Double]]? = nil
  /// Mixtures: per task, the mean weight its own expert gets at each decoder layer's sites.
  var ownWeightByLayer: [String: [Double]]? = nil
  /// Mixtures: balance, mean token entropy and entropy of the mean routing, over the
  /// mixed evaluation set.
  var balance: Double? = nil
  var tokenEntropy: Double? = nil
  var meanEntropy: Double? = nil
  /// LoRAHub: per task, the weight its search gave each expert (in the tasks' order).
  var composition: [String: [Double]]? = nil
  /// Mean accuracy over the tasks by inference k (the top-k curve), if measured.
  var accuracyByK: [Double]? = nil
  /// Trainable parameters of the run.
  var trainedParameters: Int = 0

  /// The mean of `accuracy` over `tasks`.
  func meanAccuracy(_ tasks: [String]) -> Double {
    tasks.map { accuracy[$0] ?? .nan }.reduce(0, +) / Double(tasks.count)
  }
}

/// The reproduction's `results.json`: its settings and every finished run. Saved after each
/// run (atomically), so an interrupted reproduction resumes where it stopped.
public struct Results: Codable {
  /// The plan the runs followed; a folder made by another plan is refused, not mixed.
  public var plan: String
  /// The base model's folder the experts were trained on.
  public var base: String?
  /// The base model's architecture (`mamba`); absent for the Llama, as in results written
  /// before there was a choice.
  public var architecture: String?
  /// The tasks, in order; expert i is task i's.
  public var tasks: [String]
  /// The base model's parameter count.
  public var baseParameters: Int
  /// Every finished run, by id.
  public var runs: [String: RunRecord] = [:]

  /// Results with no run yet.
  public init(
    plan: String, base: String?, architecture: Architecture = .llama, tasks: [String],
    baseParameters: Int
  ) {
    (self.plan, self.base, self.tasks, self.baseParameters) = (plan, base, tasks, baseParameters)
    self.architecture = architecture == .llama ? nil : architecture.rawValue
  }

  /// The architecture the runs were made on.
  public var baseArchitecture: Architecture {
    architecture.flatMap(Architecture.init(rawValue:)) ?? .llama
  }

  /// The results in `folder`, if any.
  public static func load(from folder: URL) throws -> Results? {
    let file = folder.appendingPathComponent("results.json")
    guard FileManager.default.fileExists(atPath: file.path) else { return nil }
    do {
      return try JSONDecoder().decode(Results.self, from: Data(contentsOf: file))
    } catch {
      throw ToolError.failure(
        "\(file.path) is not a reproduction's results (\(error)); move it away or pass --overwrite")
    }
  }

  /// Writes `results.json` into `folder`, atomically.
  func save(to folder: URL) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try writeAtomically(try encoder.encode(self), to: folder.appendingPathComponent("results.json"))
  }
}

/// At most `count` points of `values`, each the mean of its stretch.
func thinned(_ values: [Double], to count: Int = 200) -> [Double] {
  guard values.count > count else { return values }
  return (0..<count).map { index in
    let range = (index * values.count / count)..<((index + 1) * values.count / count)
    return values[range].reduce(0, +) / Double(range.count)
  }
}
