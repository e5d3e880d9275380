import Foundation
import Testing

let datasetsFolder = packageRoot.appendingPathComponent("Datasets").path

/// A tiny base model pretrained for two steps, written once for the tests that need one.
let tinyBase: String = {
  let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
    "tiny-base-\(UUID().uuidString)")
  let run = try! runProduct(
    "tinymixer",
    [
      "pretrain", "--steps", "2", "--hidden", "16", "--layers", "1", "--heads", "2",
      "--intermediate", "16",
      "--batch", "8", "--out", folder.path, "--datasets", datasetsFolder,
    ])
  precondition(run.status == 0, "pretraining the tiny base failed: \(run.error)")
  return folder.path
}()

/// A line of `output` that starts with `prefix`.
func line(_ prefix: String, in output: String) -> String? {
  output.split(separator: "\n").map(String.init).first { $0.hasPrefix(prefix) }
}

@Test func trainingWithTheSameSeedGivesTheSameNumbersOnOneAndTwoThreads() throws {
  var results: [String] = []
  for threads in ["1", "2"] {
    let out = FileManager.default.temporaryDirectory.appendingPathComponent(
      "adapter-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: out) }
    let run = try runProduct(
      "tinymixer",
      [
        "train", "toy-sst2", "--base", tinyBase, "--steps", "6", "--batch", "8", "--seed", "1",
        "--threads", threads,
        "--out", out.path, "--datasets", datasetsFolder,
      ])
    #expect(run.status == 0, "\(run.error)")
    let loss = try #require(line("final training loss", in: run.output))
    let accuracy = try #require(line("test accuracy", in: run.output))
    results.append(loss + "\n" + accuracy)
    #expect(
      FileManager.default.fileExists(
        atPath: out.appendingPathComponent("adapter_model.safetensors").path))
    #expect(run.output.contains("adapter saved to"))
  }
  #expect(results[0] == results[1])
}

/// `tinymixer train toy-sst2` on the tiny base, 3 steps of 8 examples, with `options`, into
/// a new temporary folder, which the caller removes.
func trainTinyExpert(_ options: [String] = []) throws -> (run: ProcessResult, out: URL) {
  let out = FileManager.default.temporaryDirectory.appendingPathComponent(
    "adapter-\(UUID().uuidString)")
  let run = try runProduct(
    "tinymixer",
    [
      "train", "toy-sst2", "--base", tinyBase, "--steps", "3", "--batch", "8", "--out", out.path,
      "--datasets", datasetsFolder,
    ] + options)
  return (run, out)
}

@Test func evalReadsTheSavedAdapter() throws {
  let (train, out) = try trainTinyExpert()
  defer { try? FileManager.default.removeItem(at: out) }
  #expect(train.status == 0)
  let eval = try runProduct(
    "tinymixer",
    ["eval", "toy-sst2", "--base", tinyBase, "--adapter", out.path, "--datasets", datasetsFolder])
  #expect(eval.status == 0, "\(eval.error)")
  let reported = try #require(line("test accuracy", in: train.output)).split(separator: " ")[2]
  #expect(eval.output.contains("toy-sst2 test: \(reported) exact match on 1000 examples"))
}

/// `--profile` sums the steps' operations: one low-rank layer per adapted projection and step.
@Test func trainingWithProfilePrintsEachOperationSummedOverTheSteps() throws {
  let (train, out) = try trainTinyExpert(["--profile"])
  defer { try? FileManager.default.removeItem(at: out) }
  #expect(train.status == 0, "\(train.error)")
  #expect(train.output.contains("by operation, summed over 3 steps"))
  let header = try #require(line("toy-sst2: training a LoRA expert", in: train.output))
  let layers = try #require(Int(header.split(separator: " of ").last!.split(separator: " ")[0]))
  let row = try #require(line("lowRankLinear", in: train.output)).split(separator: " ")
  #expect(row[1] == "\(3 * 7 * layers)", "\(row)")
}

@Test func aMalformedDatasetLineIsNamedByFileAndLine() throws {
  let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
    "datasets-\(UUID().uuidString)")
  defer { try? FileManager.default.removeItem(at: folder) }
  try FileManager.default.copyItem(at: URL(fileURLWithPath: datasetsFolder), to: folder)
  let file = folder.appendingPathComponent("toy-sst2/train.tsv")
  var lines = try String(contentsOf: file, encoding: .utf8).split(
    separator: "\n", omittingEmptySubsequences: false)
  lines[2] = "no tab on this line"
  try lines.joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)
  let run = try runProduct(
    "tinymixer",
    [
      "train", "toy-sst2", "--datasets", folder.path, "--base", tinyBase, "--out",
      folder.appendingPathComponent("adapter").path,
    ])
  #expect(run.status == 1)
  #expect(
    run.error.contains("toy-sst2/train.tsv:3: expected 'prompt<TAB>answer', found 1 field"),
    "\(run.error)")
  #expect(run.error.split(separator: "\n").count == 1)
}

@Test(arguments: [
  (["train"], "missing the task to train"),
  (["train", "toy-mnist"], "unknown task 'toy-mnist'; tasks: toy-sst2"),
  (["train", "toy-sst2", "--steps", "-3"], "--steps needs a whole number in 1...1000000"),
  (["train", "toy-sst2", "--lr", "fast"], "--lr needs a number"),
  (["train", "toy-sst2", "--rank"], "option '--rank' needs a value"),
  (["eval", "toy-sst2", "--split", "validation"], "--split must be train, dev or test"),
  (
    ["pretrain", "--hidden", "10", "--heads", "4"],
    "hidden_size 10 is not a multiple of num_attention_heads 4"
  ),
])
func trainingMisuseIsAUsageError(arguments: [String], message: String) throws {
  let run = try runProduct("tinymixer", arguments + ["--datasets", datasetsFolder])
  #expect(run.status == 2)
  #expect(run.error.hasPrefix("tinymixer: error: \(message)"), "\(run.error)")
}

@Test func aMissingBaseIsAFailedRunNotACrash() throws {
  let run = try runProduct(
    "tinymixer",
    [
      "train", "toy-sst2", "--base", "/nonexistent/base", "--datasets", datasetsFolder, "--out",
      FileManager.default.temporaryDirectory.appendingPathComponent("never-\(UUID().uuidString)")
        .path,
    ])
  #expect(run.status == 1)
  #expect(run.error.contains("/nonexistent/base/config.json: cannot read"))
}

@Test func resumeWithoutACheckpointIsRefusedAndASuccessfulRunRemovesIt() throws {
  let out = FileManager.default.temporaryDirectory.appendingPathComponent(
    "adapter-\(UUID().uuidString)")
  defer { try? FileManager.default.removeItem(at: out) }
  let refused = try runProduct(
    "tinymixer",
    [
      "train", "toy-sst2", "--base", tinyBase, "--resume", "--out", out.path, "--datasets",
      datasetsFolder,
    ])
  #expect(refused.status == 1)
  #expect(refused.error.contains("--resume: no checkpoint at \(out.path)/checkpoint.safetensors"))
  let run = try runProduct(
    "tinymixer",
    [
      "train", "toy-sst2", "--base", tinyBase, "--steps", "4", "--batch", "8",
      "--checkpoint-every", "2", "--out", out.path, "--datasets", datasetsFolder,
    ])
  #expect(run.status == 0, "\(run.error)")
  let files = try FileManager.default.contentsOfDirectory(atPath: out.path).sorted()
  #expect(files == ["adapter_config.json", "adapter_model.safetensors"])
  let before = try Data(contentsOf: out.appendingPathComponent("adapter_model.safetensors"))
  let again = try runProduct(
    "tinymixer",
    [
      "train", "toy-sst2", "--base", tinyBase, "--steps", "2", "--out", out.path, "--datasets",
      datasetsFolder,
    ])
  #expect(again.status == 2)
  #expect(
    again.error.contains("\(out.path) already holds an adapter; pass --overwrite to replace it"))
  #expect(try Data(contentsOf: out.appendingPathComponent("adapter_model.safetensors")) == before)
}

@Test func anExampleLongerThanTheContextIsNamedNotACrash() throws {
  let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
    "long-\(UUID().uuidString)")
  defer { try? FileManager.default.removeItem(at: folder) }
  try FileManager.default.copyItem(atPath: datasetsFolder, toPath: folder.path)
  let file = folder.appendingPathComponent("toy-sst2/test.tsv")
  var lines = try String(contentsOf: file, encoding: .utf8).components(separatedBy: "\n")
  lines[2] = Array(repeating: "the movie is good", count: 30).joined(separator: " ") + "\tpositive"
  try lines.joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)
  let run = try runProduct(
    "tinymixer", ["eval", "toy-sst2", "--base", tinyBase, "--datasets", folder.path])
  #expect(run.status == 1)
  #expect(
    run.error.contains(
      "toy-sst2/test.tsv:3: this example is 123 tokens long, more than the model's context of"))
}

/// A folder is written as a whole: when the second of an adapter's two files cannot be
/// written, the previous adapter is left exactly as it was (not its new config beside its
/// old weights), and no temporary folder is left behind.
@Test func aFailureAtTheSecondFileOfAFolderLeavesThePreviousFolderIdentical() throws {
  let root = FileManager.default.temporaryDirectory.appendingPathComponent(
    "folder-write-\(UUID().uuidString)")
  defer { try? FileManager.default.removeItem(at: root) }
  let out = root.appendingPathComponent("adapter")
  func train(_ extra: [String], environment: [String: String] = [:]) throws -> ProcessResult {
    try runProduct(
      "tinymixer",
      [
        "train", "toy-sst2", "--base", tinyBase, "--steps", "1", "--batch", "8", "--out", out.path,
        "--datasets", datasetsFolder,
      ] + extra, environment: environment)
  }
  #expect(try train([]).status == 0)
  let names = try FileManager.default.contentsOfDirectory(atPath: out.path).sorted()
  #expect(names == ["adapter_config.json", "adapter_model.safetensors"])
  let before = try names.map { try Data(contentsOf: out.appendingPathComponent($0)) }

  // The same folder again, another α; the disk fills at the second write of the process.
  let failed = try train(
    ["--overwrite", "--alpha", "8"], environment: ["TINYMIXER_SIMULATE_FULL_DISK": "2"])
  #expect(failed.status == 1)
  #expect(
    failed.error.hasPrefix(
      "tinymixer: error: cannot write \(out.path)/adapter_model.safetensors: no space left"),
    "\(failed.error)")
  let after = try names.map { try Data(contentsOf: out.appendingPathComponent($0)) }
  #expect(after == before, "the previous adapter changed")
  #expect(try FileManager.default.contentsOfDirectory(atPath: root.path) == ["adapter"])

  // Without the failure, the new adapter replaces the old one whole.
  #expect(try train(["--overwrite", "--alpha", "8"]).status == 0)
  let config = try String(
    contentsOf: out.appendingPathComponent("adapter_config.json"), encoding: .utf8)
  #expect(config.contains("\"lora_alpha\": 8"), "\(config)")
  #expect(try FileManager.default.contentsOfDirectory(atPath: root.path) == ["adapter"])
}

/// Two runs into one output folder at once: the second is refused, told which process holds
/// the folder, and the first finishes unharmed.
@Test func aSecondRunIntoAFolderInUseIsRefused() throws {
  let root = FileManager.default.temporaryDirectory.appendingPathComponent(
    "in-use-\(UUID().uuidString)")
  defer { try? FileManager.default.removeItem(at: root) }
  let out = root.appendingPathComponent("adapter")
  let arguments = [
    "train", "toy-sst2", "--base", tinyBase, "--batch", "8", "--out", out.path, "--datasets",
    datasetsFolder,
  ]
  // The first run, in the background, long enough to be caught at work.
  let first = Process()
  first.executableURL = productURL("tinymixer")
  first.arguments = arguments + ["--steps", "100000"]
  first.standardOutput = FileHandle.nullDevice
  first.standardError = FileHandle.nullDevice
  try first.run()
  defer {
    // Ended here whatever happened above, so that no run outlives the test.
    kill(first.processIdentifier, SIGKILL)
    first.waitUntilExit()
  }
  let lock = root.appendingPathComponent(".adapter.lock")
  let deadline = Date().addingTimeInterval(60)
  while Date() < deadline
    && (try? String(contentsOf: lock, encoding: .utf8)) != "\(first.processIdentifier)"
  {
    Thread.sleep(forTimeInterval: 0.05)
  }
  let second = try runProduct("tinymixer", arguments + ["--steps", "1"])
  #expect(second.status == 2)
  #expect(
    second.error
      == "tinymixer: error: \(out.path) is being written by process \(first.processIdentifier); wait for it to finish or choose another folder\n",
    "\(second.error)")
  #expect(first.isRunning, "the first run was not disturbed")
}

/// `pretrain --check` pretrains again and compares every weight with the base shipped in
/// the working directory's `Models/`: identical passes, one changed weight fails by name.
@Test func pretrainCheckComparesTheShippedBaseBitForBit() throws {
  let root = FileManager.default.temporaryDirectory.appendingPathComponent(
    "shipped-\(UUID().uuidString)")
  defer { try? FileManager.default.removeItem(at: root) }
  let tiny = [
    "--steps", "2", "--hidden", "16", "--layers", "1", "--heads", "2", "--intermediate", "16",
    "--batch", "8", "--datasets", datasetsFolder,
  ]
  let cache = root.appendingPathComponent("cache")
  let made = try runProduct(
    "tinymixer", ["pretrain"] + tiny, environment: ["TINYMIXER_CACHE": cache.path])
  #expect(made.status == 0, "\(made.error)")
  let models = root.appendingPathComponent("Models")
  try FileManager.default.moveItem(at: cache, to: models)

  let same = try runProduct("tinymixer", ["pretrain", "--check"] + tiny, directory: root)
  #expect(same.status == 0, "\(same.error)")
  #expect(same.output.contains("is bit for bit what this pretraining makes"), "\(same.output)")

  let folder = try #require(
    try FileManager.default.contentsOfDirectory(atPath: models.path).first)
  let file = models.appendingPathComponent("\(folder)/model.safetensors")
  var bytes = try Data(contentsOf: file)
  bytes[bytes.count - 1] ^= 0x01  // an exponent bit of the file's last weight
  try bytes.write(to: file)
  let changed = try runProduct("tinymixer", ["pretrain", "--check"] + tiny, directory: root)
  #expect(changed.status == 1)
  #expect(
    changed.output.contains("differs from this pretraining in 1 tensor ("), "\(changed.output)")

  let missing = try runProduct(
    "tinymixer", ["pretrain", "--check", "--seed", "1"] + tiny, directory: root)
  #expect(missing.status != 0)
  #expect(missing.error.contains("no shipped base for this recipe and vocabulary"))
}

@Test func aMambaBasePretrainsTrainsAnExpertAndMixesRouters() throws {
  let root = FileManager.default.temporaryDirectory.appendingPathComponent(
    "mamba-\(UUID().uuidString)")
  defer { try? FileManager.default.removeItem(at: root) }
  let base = try pretrainTinyMamba(into: root.appendingPathComponent("base"))
  let config = try String(contentsOf: base.appendingPathComponent("config.json"), encoding: .utf8)
  #expect(config.contains("\"model_type\": \"mamba\""))
  let expert = root.appendingPathComponent("expert")
  let train = try runProduct(
    "tinymixer",
    [
      "train", "toy-sst2", "--base", base.path, "--steps", "2", "--batch", "4", "--out",
      expert.path, "--datasets", datasetsFolder,
    ])
  #expect(train.status == 0, "\(train.error)")
  #expect(
    train.output.contains("on in_proj, x_proj, dt_proj, out_proj of 1 layers"), "\(train.output)")
  let adapter = try String(
    contentsOf: expert.appendingPathComponent("adapter_config.json"), encoding: .utf8)
  for projection in ["in_proj", "x_proj", "dt_proj", "out_proj"] {
    #expect(adapter.contains("\"\(projection)\""))
  }
  // Attention sites do not exist in a Mamba: refused, not an empty adapter.
  let attention = try runProduct(
    "tinymixer",
    [
      "train", "toy-sst2", "--base", base.path, "--sites", "attention", "--steps", "2",
      "--out", root.appendingPathComponent("none").path, "--datasets", datasetsFolder,
    ])
  #expect(attention.status == 2)
  #expect(attention.error.contains("is a projection of this base"))
  let mix = try runProduct(
    "tinymixer",
    [
      "mix", "toy-sst2", "toy-cola", "--base", base.path, "--expert-steps", "2", "--steps", "2",
      "--batch", "4", "--router-examples", "8", "--runs", root.appendingPathComponent("runs").path,
      "--out", root.appendingPathComponent("mixer").path, "--datasets", datasetsFolder,
    ])
  #expect(mix.status == 0, "\(mix.error)")
  #expect(mix.output.contains("stage 2: 4 routed sites × 2 experts"), "\(mix.output)")
  // The saved mixer names its Mamba base: eval and route read it back.
  let mixer = root.appendingPathComponent("mixer").path
  let eval = try runProduct(
    "tinymixer", ["eval", "toy-cola", "--mixer", mixer, "--datasets", datasetsFolder])
  #expect(eval.status == 0, "\(eval.error)")
  #expect(eval.output.contains("toy-cola test:"), "\(eval.output)")
  let route = try runProduct(
    "tinymixer",
    [
      "route", mixer, "--datasets", datasetsFolder, "--examples", "4", "--svg",
      root.appendingPathComponent("route.svg").path,
    ])
  #expect(route.status == 0, "\(route.error)")
  // debug-state writes the expert's gradients on the Mamba, and checks them back.
  let state = root.appendingPathComponent("state.safetensors").path
  let write = try runProduct(
    "tinymixer",
    [
      "debug-state", "toy-sst2", "--base", base.path, "--adapter", expert.path, "--out", state,
      "--datasets", datasetsFolder,
    ])
  #expect(write.status == 0, "\(write.error)")
  let check = try runProduct(
    "tinymixer",
    [
      "debug-state", "--check", state, "--base", base.path, "--adapter", expert.path,
      "--datasets", datasetsFolder,
    ])
  #expect(check.status == 0, "\(check.error)")
  #expect(
    check.output.contains("grad.backbone.layers.0.mixer.dt_proj.lora_A.weight"), "\(check.output)")
}
