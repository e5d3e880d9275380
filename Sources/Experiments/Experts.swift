import Foundation
import LoRAMixer
import NN
import ToyTasks
import Training

/// Where experts and routed sites go: every projection (the toy default), the paper's
/// attention projections, or the MLP's.
public enum SiteChoice: String, CaseIterable {
  case attention, mlp, all

  /// The projection names.
  public var targets: [String] {
    switch self {
    case .attention: attentionProjections
    case .mlp: mlpProjections
    case .all: allProjections
    }
  }

  /// The choice whose projections are exactly `targets`, if there is one.
  init?(targets: [String]) {
    guard let choice = Self.allCases.first(where: { $0.targets == targets }) else { return nil }
    self = choice
  }
}

/// An expert: its name, its adapter file, and its adapters attached to the model.
public typealias Expert = (name: String, file: LoRAAdapterFile, adapters: [String: LoRA])

/// An expert's name from its folder: the folder's name, or its parent's when the folder is
/// called `adapter` (`runs/toy-sst2/adapter` is `toy-sst2`).
public func expertName(_ folder: URL) -> String {
  let last = folder.standardizedFileURL.lastPathComponent
  return last == "adapter"
    ? folder.standardizedFileURL.deletingLastPathComponent().lastPathComponent : last
}

/// Attaches `file` to `model`, as a failure naming the file when it does not fit.
public func attachedAdapters(_ file: LoRAAdapterFile, _ model: any CausalLanguageModel) throws
  -> [String:
  LoRA]
{
  do {
    return Dictionary(
      uniqueKeysWithValues: try file.attach(to: model).map { ($0.path, $0.adapter) })
  } catch { throw ToolError.failure("\(error)") }
}

extension Project {
  /// Task `task`'s stage-1 expert on `model`: read from `folder` if it was trained there on
  /// this base at the recipe's targets, else trained by `recipe` now (with progress) and
  /// saved there.
  public func expert(
    _ task: ToyTask, recipe: ExpertRecipe, model: any CausalLanguageModel, baseFolder: URL,
    folder: URL, seed: UInt64
  ) throws -> LoRAAdapterFile {
    if let file = try? LoRAAdapterFile.load(from: folder),
      file.config["base_model_name_or_path"]?.string == baseFolder.path,
      Set(file.sites.keys) == Set(model.linearLayers(named: recipe.targets).map(\.path))
    {
      print("\(task.name): expert read from \(folder.path)")
      return file
    }
    print(
      "\(task.name): training its expert (\(recipe.training.steps) steps; saved to \(folder.path))")
    var progress = ProgressDisplay(task.name)
    let (adapters, _) = try recipe.train(
      model, on: examples(task, .train), tokenizer: tokenizer, seed: seed
    ) { progress.show($0) }
    let file = LoRAAdapterFile(adapters: adapters, alpha: recipe.alpha, baseModel: baseFolder.path)
    try file.save(to: folder)
    return file
  }
}
