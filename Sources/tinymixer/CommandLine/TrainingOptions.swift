import LoRAMixer

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
