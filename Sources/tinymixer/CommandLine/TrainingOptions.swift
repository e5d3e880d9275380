import Experiments
import Foundation
import LoRAMixer
import Training

extension Option {
  /// `--steps`, `--lr` and `--batch`, with `defaults` shown in their help.
  static func training(_ defaults: TrainingSettings, batchUnit: String = "examples") -> [Option] {
    [
      Option(name: "steps", valueName: "N", help: "training steps (default: \(defaults.steps))"),
      Option(
        name: "lr", valueName: "X", help: "peak learning rate (default: \(defaults.learningRate))"),
      Option(
        name: "batch", valueName: "N",
        help: "\(batchUnit) per step (default: \(defaults.batchSize))"),
    ]
  }
}

extension Arguments {
  /// `defaults` with `--steps`, `--lr` and `--batch` applied.
  func trainingSettings(_ defaults: TrainingSettings) throws -> TrainingSettings {
    var settings = defaults
    settings.steps = try integer("steps", default: defaults.steps, in: 1...1_000_000)
    settings.learningRate = try number("lr", default: defaults.learningRate, in: 1e-7...1)
    settings.batchSize = try integer("batch", default: defaults.batchSize, in: 1...4096)
    return settings
  }
}

extension Option {
  /// `--checkpoint-every N` and `--resume`, for a command that saves the training state of
  /// `what` in its output folder.
  static func checkpointing(_ what: String) -> [Option] {
    [
      Option(
        name: "checkpoint-every", valueName: "N",
        help:
          "save \(what) to <out>/\(TrainingCheckpoint.fileName) every N steps (default: 100)"),
      Option(
        name: "resume", valueName: nil,
        help:
          "continue from <out>/\(TrainingCheckpoint.fileName) (written periodically, and on Ctrl-C)"
      ),
    ]
  }
}

extension Arguments {
  /// The checkpointing of `--checkpoint-every` and `--resume` into the folder `out`; Ctrl-C
  /// saves and stops. `--resume` without a checkpoint there is an error.
  func checkpointPolicy(in out: URL) throws -> CheckpointPolicy {
    let file = out.appendingPathComponent(TrainingCheckpoint.fileName)
    if has("resume") && !FileManager.default.fileExists(atPath: file.path) {
      throw ToolError.failure("--resume: no checkpoint at \(file.path)")
    }
    return CheckpointPolicy(
      file: file, every: try integer("checkpoint-every", default: 100, in: 1...1_000_000),
      resume: has("resume"), shouldStop: { Interruption.isRequested })
  }
}
