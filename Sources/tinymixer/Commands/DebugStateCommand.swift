import Autodiff
import Foundation
import LoRAMixer
import NN
import SafeTensors
import ToyTasks

/// `tinymixer debug-state`: one batch's inputs, logits, loss and every trainable gradient,
/// in one safetensors file, to check tinymixer against another framework.
enum DebugStateCommand: Command {
  static let name = "debug-state"
  static let summary =
    "write one batch's ids, logits, loss and gradients to a safetensors file (to compare frameworks)"
  static let synopsis =
    "tinymixer debug-state <task> --out FILE [--examples N] [--adapter DIR | --mixer DIR] [--base DIR]"
  static let options: [Option] = [
    Option(name: "out", valueName: "FILE", help: "the safetensors file to write"),
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
    .threads, Locations.datasetsOption,
  ]

  static func run(_ arguments: Arguments) throws -> Int32 {
    try arguments.expectPositionals(1, 1, "the task whose first training examples form the batch")
    let task = try Project.task(arguments.positionals[0])
    guard let outPath = arguments.string("out") else {
      throw ToolError.usage("--out FILE is required")
    }
    if arguments.string("adapter") != nil && arguments.string("mixer") != nil {
      throw ToolError.usage("give --adapter or --mixer, not both")
    }
    let count = try arguments.integer("examples", default: 4, in: 1...4096)
    let project = try Project(arguments)
    let examples = Array(project.examples(task, .train).prefix(count))
    let batch = project.tokenizer.answerBatch(examples)

    let mixerFolder = arguments.string("mixer").map { URL(fileURLWithPath: $0) }
    let (model, baseFolder, _) = try project.loadBase(arguments, mixer: mixerFolder)
    var described = "every weight of the base"
    var mixture: Mixture? = nil
    do {
      if let path = arguments.string("adapter") {
        try LoRAAdapterFile.load(from: URL(fileURLWithPath: path)).attach(to: model)
        described = "the adapter's weights"
      } else if let mixerFolder {
        mixture = try MixerFiles.load(from: mixerFolder, onto: model).mixture
        mixture!.context.training = true
        described = "the routers' weights"
      } else {
        model.setTrainable(true)
      }
    } catch { throw ToolError.failure("\(error)") }

    let parameters = mixture?.routerParameters() ?? model.trainableParameters()
    let tape = Tape()
    var logits: Tensor? = nil
    let loss = tape.record { () -> Tensor in
      mixture?.context.reset()
      let output = model.logits(batch.tokens, batch: batch.batch, length: batch.length)
      logits = output
      return model.loss(
        tokens: batch.tokens, targets: batch.targets, mask: batch.mask, batch: batch.batch,
        length: batch.length)
    }
    let gradients = tape.gradients(of: loss)

    var file = SafeTensorsFile(metadata: [
      "format": "pt", "task": task.name, "base_model": baseFolder.path,
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
    try file.write(to: URL(fileURLWithPath: outPath))
    print(
      String(
        format:
          "%@: %d examples, %d × %d tokens, loss %.6f; gradients of %@ (%d tensors) written to %@",
        task.name, batch.batch, batch.batch, batch.length, loss.item, described, parameters.count,
        outPath))
    if mixture != nil {
      print(
        "the loss is the answers' cross-entropy alone: training adds the routing loss (RSL or balance), which this file leaves out"
      )
    }
    return 0
  }
}
