import Experiments
import Foundation
import LoRAMixer
import NN
import ToyTasks
import Training

/// `tinymixer eval <task>`: exact-match accuracy of a base model, of a base with an
/// adapter, or of a saved mixer, on a task's split.
enum EvalCommand: Command {
  static let name = "eval"
  static let summary = "exact-match accuracy of a model (adapter or mixer) on a task's split"
  static let synopsis =
    "tinymixer eval <task> [--split train|dev|test] [--adapter DIR | --mixer DIR [--inference-k N]] [--base DIR | --architecture llama|mamba] [--show N]"
  static let options: [Option] = [
    Option(name: "split", valueName: "NAME", help: "train, dev or test (default: test)"),
    Option(
      name: "adapter", valueName: "DIR", help: "a PEFT LoRA adapter directory to apply to the base"),
    Option(
      name: "mixer", valueName: "DIR",
      help: "a mixer folder (from tinymixer mix), routed as at inference, on the base it records"),
    Option(
      name: "inference-k", valueName: "N",
      help: "with --mixer: experts per token (default: the mixer's own)"),
    Project.baseOption, Project.architectureOption,
    Option(
      name: "show", valueName: "N",
      help: "also print the first N examples with the model's answers (default: 0)"),
    .threads, Locations.datasetsOption,
  ]

  static func run(_ arguments: Arguments) throws -> Int32 {
    try arguments.expectPositionals(1, 1, "the task to evaluate (for example toy-sst2)")
    let task = try Project.task(arguments.positionals[0])
    let splitName = arguments.string("split") ?? "test"
    guard let split = Split(rawValue: splitName) else {
      throw ToolError.usage("--split must be train, dev or test, got '\(splitName)'")
    }
    let show = try arguments.integer("show", default: 0, in: 0...100_000)
    if arguments.has("adapter") && arguments.has("mixer") {
      throw ToolError.usage("give --adapter or --mixer, not both")
    }
    if arguments.has("inference-k") && !arguments.has("mixer") {
      throw ToolError.usage("--inference-k goes with --mixer")
    }
    let project = try Project(arguments)
    // The adapter is read first, so that a bad folder fails before a base is pretrained.
    let adapter: LoRAAdapterFile?
    do {
      adapter = try arguments.string("adapter").map {
        try LoRAAdapterFile.load(from: URL(fileURLWithPath: $0))
      }
    } catch { throw ToolError.failure("\(error)") }
    let mixerFolder = arguments.string("mixer").map { URL(fileURLWithPath: $0) }
    let (model, baseFolder, _) = try project.loadBase(arguments, mixer: mixerFolder)
    var described = "the base model \(baseFolder.path)"
    if let adapter, let path = arguments.string("adapter") {
      do { try adapter.attach(to: model) } catch { throw ToolError.failure("\(error)") }
      described += " with the adapter \(path)"
    }
    if let mixerFolder {
      let loaded: Mixture
      do { loaded = try MixerFiles.load(from: mixerFolder, onto: model).mixture } catch {
        throw ToolError.failure("\(error)")
      }
      let experts = loaded.expertNames.count
      loaded.settings.inferenceK = try arguments.integer(
        "inference-k", default: loaded.settings.inferenceK, in: 1...experts)
      described +=
        " with the mixer \(mixerFolder.path) (top-\(loaded.settings.inferenceK) of \(experts) experts)"
    }
    let examples = project.examples(task, split)
    let longest = examples.map { project.tokenizer.encode($0.answer).count }.max() ?? 1
    // A mixer's sites route as at inference in the plain model's greedy decoding.
    let answers = model.answers(
      examples, tokenizer: project.tokenizer, maximumLength: longest + 1)
    for (example, answer) in zip(examples, answers).prefix(show) {
      print(
        "\(answer == example.answer ? "right" : "WRONG")  \(example.prompt)  →  \(answer)  (expected \(example.answer))"
      )
    }
    print(
      "\(task.name) \(split.rawValue): \(percent(ExactMatch.accuracy(answers, examples))) exact match on \(examples.count) examples, \(described)"
    )
    return 0
  }
}
