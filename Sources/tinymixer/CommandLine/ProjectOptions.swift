import Experiments
import Foundation
import LoRAMixer
import NN
import Training

extension Project {
  /// Reads every task's files under `--datasets` (or the default folder).
  init(_ arguments: Arguments) throws {
    try self.init(datasets: Locations.datasets(arguments))
  }

  /// The base model: `--base DIR` if given, else `recorded` (the base a saved mixer
  /// names) if given, else the cached one of `--architecture` (pretrained if missing); with
  /// its folder and the seconds spent pretraining. Every example must fit the model's
  /// context.
  func loadBase(_ arguments: Arguments, recorded: URL? = nil) throws -> (
    any CausalLanguageModel, URL, Double
  ) {
    var recipe = BaseRecipe()
    recipe.architecture = try arguments.choice("architecture", default: recipe.architecture)
    return try loadBase(
      arguments.string("base").map { URL(fileURLWithPath: $0) } ?? recorded, recipe: recipe)
  }

  /// The base for the mixer in `mixer` (if any): `--base DIR` if given, else the base the
  /// mixer records, else the cached one.
  func loadBase(_ arguments: Arguments, mixer: URL?) throws -> (
    any CausalLanguageModel, URL, Double
  ) {
    let recorded: URL?
    do {
      recorded = try mixer.map { URL(fileURLWithPath: try MixerFiles.readConfig($0).baseModel) }
    } catch { throw ToolError.failure("\(error)") }
    return try loadBase(arguments, recorded: recorded)
  }

  /// `--architecture llama|mamba`, read by `loadBase` (and `pretrain`).
  static let architectureOption = Option(
    name: "architecture", valueName: "KIND",
    help: "the base model: llama (a transformer) or mamba (a state-space model) (default: llama)")

  /// `--base DIR`, read by `loadBase`.
  static let baseOption = Option(
    name: "base", valueName: "DIR",
    help: "a base model directory (default: the cached base, pretrained if missing)")
}
