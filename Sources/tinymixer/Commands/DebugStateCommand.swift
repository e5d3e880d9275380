import Autodiff
import Experiments
import Foundation
import LoRAMixer
import NN
import SafeTensors
import ToyTasks
import Training

/// `tinymixer debug-state`: one batch's inputs, logits, loss and every trainable gradient,
/// in one safetensors file, to check tinymixer against another framework.
enum DebugStateCommand: Command {
  static let name = "debug-state"
  static let summary =
    "write one batch's ids, logits, loss and gradients to a safetensors file (to compare frameworks)"
  static let synopsis =
    "tinymixer debug-state (<task> --out FILE [--examples N] | --check FILE) [--adapter DIR | --mixer DIR] [--base DIR | --architecture llama|mamba]"
  static let options: [Option] = [
    Option(name: "out", valueName: "FILE", help: "the safetensors file to write"),
    Option(
      name: "check", valueName: "FILE",
      help:
        "instead of writing: recompute the batch of FILE (written by another framework, or by --out) and compare every tensor in it, one OK or NOT OK line each; exit 1 if any differs"
    ),
    Option(
      name: "examples", valueName: "N",
      help: "the first N training examples form the batch (default: 4)"),
    Option(
      name: "adapter", valueName: "DIR",
      help: "a PEFT adapter on the base: gradients of its weights (default: of every base weight)"),
    Option(
      name: "mixer", valueName: "DIR",
      help:
        "a mixer folder: gradients of its routers, routing as in training (soft weights for hardsoft's backward); the loss is the task's cross-entropy alone, without the routing loss training adds"
    ),
    Option(
      name: "base", valueName: "DIR",
      help: "a base model directory (default: the mixer's base, else the cached base)"),
    Project.architectureOption, .threads, Locations.datasetsOption,
  ]

  static func run(_ arguments: Arguments) throws -> Int32 {
    let referencePath = arguments.string("check")
    if arguments.string("adapter") != nil && arguments.string("mixer") != nil {
      throw ToolError.usage("give --adapter or --mixer, not both")
    }
    let project = try Project(arguments)
    let batch: TokenBatch
    let taskName: String
    let reference: SafeTensorsFile?
    if let referencePath {
      try arguments.expectPositionals(0, 0, "")
      let file: SafeTensorsFile
      do { file = try SafeTensorsFile.read(from: URL(fileURLWithPath: referencePath)) } catch {
        throw ToolError.failure("\(error)")
      }
      batch = try Self.batch(from: file, path: referencePath)
      (taskName, reference) = (file.metadata["task"] ?? "the reference's batch", file)
    } else {
      try arguments.expectPositionals(
        1, 1, "the task whose first training examples form the batch")
      guard arguments.string("out") != nil else {
        throw ToolError.usage("--out FILE is required (or --check FILE to compare)")
      }
      let task = try Project.task(arguments.positionals[0])
      let count = try arguments.integer("examples", default: 4, in: 1...4096)
      let examples = Array(project.examples(task, .train).prefix(count))
      batch = project.tokenizer.answerBatch(examples)
      (taskName, reference) = (task.name, nil)
    }
    let state = try computeState(batch, task: taskName, project: project, arguments: arguments)
    if let reference, let referencePath {
      return compare(state.file, with: reference, path: referencePath)
    }
    let outPath = arguments.string("out")!
    try state.file.write(to: URL(fileURLWithPath: outPath))
    print(
      String(
        format:
          "%@: %d examples, %d × %d tokens, loss %.6f; gradients of %@ (%d tensors) written to %@",
        taskName, batch.batch, batch.batch, batch.length, state.loss, state.described,
        state.gradientCount, outPath))
    if arguments.string("mixer") != nil {
      print(
        "the loss is the answers' cross-entropy alone: training adds the routing loss (RSL or balance), which this file leaves out"
      )
    }
    return 0
  }

  /// The batch a reference file was made from: its ids, targets and answer mask.
  static func batch(from file: SafeTensorsFile, path: String) throws -> TokenBatch {
    guard let ids = file.tensors["input_ids"], ids.shape.count == 2,
      let tokens = ids.int64s, let targets = file.tensors["targets"]?.int64s,
      let mask = file.tensors["answer_mask"]?.doubles,
      targets.count == tokens.count, mask.count == tokens.count
    else {
      throw ToolError.failure(
        "\(path): a reference needs input_ids [rows, length] (I64), and targets (I64) and answer_mask of the same shape"
      )
    }
    return TokenBatch(
      tokens: tokens.map { Int($0) }, targets: targets.map { Int($0) }, mask: mask.map { $0 != 0 },
      batch: ids.shape[0], length: ids.shape[1])
  }

  /// The file's tensors (ids, logits, loss and a gradient per trainable tensor) and a few
  /// facts for the summary line.
  struct State {
    var file: SafeTensorsFile
    var loss: Double
    var described: String
    var gradientCount: Int
  }

  /// The logits, loss and gradients of `batch` through the base (and its adapter or mixer).
  static func computeState(
    _ batch: TokenBatch, task: String, project: Project, arguments: Arguments
  ) throws -> State {
    let mixerFolder = arguments.string("mixer").map { URL(fileURLWithPath: $0) }
    let (model, baseFolder, _) = try project.loadBase(arguments, mixer: mixerFolder)
    if let id = batch.tokens.first(where: { $0 < 0 || $0 >= model.vocabularySize }) {
      throw ToolError.failure(
        "token id \(id) is outside the base's vocabulary of \(model.vocabularySize)")
    }
    var described = "every weight of the base"
    var mixture: Mixture? = nil
    do {
      if let path = arguments.string("adapter") {
        try LoRAAdapterFile.load(from: URL(fileURLWithPath: path)).attach(to: model)
        described = "the adapter's weights"
      } else if let mixerFolder {
        mixture = try MixerFiles.load(from: mixerFolder, onto: model).mixture
        described = "the routers' weights"
      } else {
        model.setTrainable(true)
      }
    } catch { throw ToolError.failure("\(error)") }

    let parameters = mixture?.routerParameters() ?? model.trainableParameters()
    let tape = Tape()
    var logits: Tensor? = nil
    func forward() -> Tensor {
      logits = model.logits(batch.tokens, batch: batch.batch, length: batch.length)
      return model.loss(batch)
    }
    // A mixer routes as training does: the gradients are the routers' while training.
    let loss = tape.record { mixture?.routing.run(.training, forward).result ?? forward() }
    let gradients = tape.gradients(of: loss)

    var file = SafeTensorsFile(metadata: [
      "format": "pt", "task": task, "base_model": baseFolder.path,
      "loss": "mean cross-entropy over answer_mask positions, predicting targets"
        + (mixture == nil ? "" : " (without the routing loss that training adds)"),
    ])
    let shape = [batch.batch, batch.length]
    file.tensors["input_ids"] = SafeTensor(shape: shape, int64s: batch.tokens.map(Int64.init))
    file.tensors["targets"] = SafeTensor(shape: shape, int64s: batch.targets.map(Int64.init))
    file.tensors["answer_mask"] = SafeTensor(shape: shape, floats: batch.mask.map { $0 ? 1 : 0 })
    file.tensors["logits"] = SafeTensor(logits!)
    file.tensors["loss"] = SafeTensor(shape: [], floats: [Float(loss.item)])
    for (name, tensor) in parameters {
      let gradient = gradients[tensor] ?? Tensor.zeros(tensor.shape, dtype: tensor.dtype)
      file.tensors["grad.\(name)"] = SafeTensor(gradient)
    }
    return State(
      file: file, loss: loss.item, described: described, gradientCount: parameters.count)
  }

  /// How far a recomputed tensor may be from the reference: `1e-4 · max |reference| + 1e-8`.
  /// tinymixer computes in Float32; against the Float64 reference PyTorch made
  /// (`Tests/Fixtures/pytorch-reference`) every tensor is at least 6 times inside it, and
  /// a 3% change of the adapter's scale puts 29 tensors of 30 outside.
  static func tolerance(_ reference: [Double]) -> Double {
    1e-4 * (reference.map(abs).max() ?? 0) + 1e-8
  }

  /// One line per tensor of `reference` (OK or NOT OK, with the largest difference and the
  /// tolerance); 0 if every tensor is within its tolerance, else 1.
  static func compare(_ ours: SafeTensorsFile, with reference: SafeTensorsFile, path: String)
    -> Int32
  {
    var failures = 0
    let inputs: Set = ["input_ids", "targets", "answer_mask"]
    for name in reference.tensors.keys.sorted() where !inputs.contains(name) {
      let expected = reference.tensors[name]!
      guard let mine = ours.tensors[name], mine.shape == expected.shape,
        let a = mine.doubles, let b = expected.doubles
      else {
        failures += 1
        print(
          "NOT OK  \(name): \(ours.tensors[name] == nil ? "not computed here" : "shape or type differs")"
        )
        continue
      }
      let difference = zip(a, b).map { abs($0 - $1) }.max() ?? 0
      let allowed = tolerance(b)
      let ok = difference <= allowed
      if !ok { failures += 1 }
      print(
        String(
          format: "%@  %@: max |difference| %.2e (tolerance %.2e)", ok ? "OK    " : "NOT OK",
          name, difference, allowed))
    }
    let checked = reference.tensors.keys.filter { !inputs.contains($0) }.count
    print(
      failures == 0
        ? "all \(checked) tensors of \(path) agree"
        : "\(failures) of \(checked) tensors of \(path) differ")
    return failures == 0 ? 0 : 1
  }
}
