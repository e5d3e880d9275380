import Foundation
import Testing

@Test func helpListsTheCommandsAndExitsZero() throws {
  let run = try runProduct("tinymixer", ["--help"])
  #expect(run.status == 0)
  #expect(run.output.contains("gradcheck") && run.output.contains("bench"))
}

@Test func noArgumentsIsAUsageError() throws {
  #expect(try runProduct("tinymixer", []).status == 2)
}

@Test(arguments: [
  (["frobnicate"], "unknown command 'frobnicate'"),
  (["gradcheck", "--bogus"], "unknown option '--bogus'"),
  (["gradcheck", "extra"], "unexpected argument 'extra'"),
  (["gradcheck", "--filter"], "option '--filter' needs a value"),
  (
    ["gradcheck", "--filter", "no-such-operation"], "no gradient check matches 'no-such-operation'"
  ),
  (["bench", "matmul", "--runs", "zero"], "--runs needs a whole number"),
  (["bench", "matmul", "--threads", "0"], "--threads needs a whole number from 1 to 256"),
  (["bench", "matmul", "--threads", "100000"], "--threads needs a whole number from 1 to 256"),
  (["bench", "lunch"], "unknown benchmark 'lunch'"),
  (["bench", "matmul", "--shape", "64x64"], "--shape '64x64': expected MxKxN"),
  (["bench", "matmul", "--shape", "0x8x8"], "--shape '0x8x8': expected MxKxN"),
  (["bench", "matmul", "--pytorch", "python3"], "--pytorch: only train-base and train-mixer"),
  (["bench", "train-base", "--cold"], "--cold: only matmul"),
  (["bench"], "missing what to measure"),
])
func misuseIsAOneLineUsageError(arguments: [String], message: String) throws {
  let run = try runProduct("tinymixer", arguments)
  #expect(run.status == 2)
  #expect(run.error.hasPrefix("tinymixer: error: \(message)"), "stderr: \(run.error)")
  #expect(run.output.isEmpty)
}

/// `bench matmul --cold` times products with the caches evicted, and says so.
@Test func aColdBenchSaysItEvictsTheCaches() throws {
  let run = try runProduct(
    "tinymixer", ["bench", "matmul", "--cold", "--no-numpy", "--runs", "1", "--shape", "9x8x7"])
  #expect(run.status == 0, "stderr: \(run.error)")
  #expect(run.output.contains("cold: the caches evicted before each product (64 MiB written)"))
  #expect(run.output.contains("9x8x7") && run.output.contains("Aᵀ·B"))
}

/// `bench --pytorch` with a python that cannot run the PyTorch step, or away from the
/// script, stops with one line before any work.
@Test func aPyTorchThatCannotRunStopsTheBenchAtOnce() throws {
  let missing = try runProduct(
    "tinymixer", ["bench", "train-mixer", "--pytorch", "/no/such/python"], directory: packageRoot)
  #expect(missing.status == 2)
  #expect(
    missing.error.hasPrefix("tinymixer: error: --pytorch: '/no/such/python' could not run"),
    "stderr: \(missing.error)")
  #expect(missing.output.isEmpty)
  let elsewhere = try runProduct(
    "tinymixer", ["bench", "train-base", "--pytorch", "python3"],
    directory: FileManager.default.temporaryDirectory)
  #expect(elsewhere.status == 2)
  #expect(
    elsewhere.error.contains("Benchmarks/pytorch_step.py not found"), "stderr: \(elsewhere.error)")
  #expect(elsewhere.output.isEmpty)
}

/// Every subcommand refuses an unknown option, and each refuses a missing or an extra
/// positional argument, with one line and status 2, before doing any work.
@Test(arguments: [
  (["train"], "missing the task to train"),
  (["train", "toy-sst2", "toy-cola"], "unexpected argument 'toy-cola'"),
  (["mix", "toy-sst2"], "two or more tasks to mix"),
  (["reproduce", "extra"], "unexpected argument 'extra'"),
  (["route"], "missing the mixer folder"),
  (["route", "a", "b"], "unexpected argument 'b'"),
  (["eval"], "missing the task to evaluate"),
  (["pretrain", "extra"], "unexpected argument 'extra'"),
  (["datasets", "extra"], "unexpected argument 'extra'"),
  (["debug-state"], "missing the task whose first training examples form the batch"),
  (["debug-state", "toy-sst2", "--out"], "option '--out' needs a value"),
])
func everySubcommandRefusesMissingAndExtraArguments(arguments: [String], message: String) throws {
  let run = try runProduct("tinymixer", arguments)
  #expect(run.status == 2)
  #expect(run.error.hasPrefix("tinymixer: error: \(message)"), "stderr: \(run.error)")
  #expect(run.output.isEmpty)
}

@Test func everySubcommandRefusesAnUnknownOption() throws {
  // The commands --help lists: the indented lines after "commands:".
  let help = try runProduct("tinymixer", ["--help"]).output
  let names = help.components(separatedBy: "commands:\n").last!.split(separator: "\n")
    .prefix { $0.hasPrefix("  ") }.map { String($0.split(separator: " ")[0]) }
  #expect(names.count == 10 && names.contains("reproduce"), "\(names)")
  for name in names {
    let run = try runProduct("tinymixer", [name, "--bogus"])
    #expect(run.status == 2, "\(name)")
    #expect(
      run.error.hasPrefix("tinymixer: error: unknown option '--bogus'"), "\(name): \(run.error)")
    #expect(run.output.isEmpty, "\(name)")
  }
}

@Test func gradcheckPassesEveryOperationAndPrintsItsTable() throws {
  let run = try runProduct("tinymixer", ["gradcheck"])
  #expect(run.status == 0)
  #expect(run.output.contains("matmul Aᵀ·B"))
  #expect(run.output.contains("FAIL") == false)
  #expect(run.output.contains(" passed (relative error below 1e-06"))
}

@Test func subcommandHelpShowsItsOptions() throws {
  let run = try runProduct("tinymixer", ["bench", "--help"])
  #expect(run.status == 0)
  #expect(run.output.contains("--threads N") && run.output.contains("--no-numpy"))
}

@Test func aFailedWriteIsOneClearLineAndLeavesNothingBehind() throws {
  let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
    "full-disk-\(UUID().uuidString)")
  defer { try? FileManager.default.removeItem(at: folder) }
  // A full disk, simulated: the weights cannot be written.
  let full = try runProduct(
    "tinymixer",
    [
      "pretrain", "--steps", "1", "--hidden", "8", "--layers", "1", "--heads", "2",
      "--intermediate", "8", "--batch", "4", "--out", folder.path, "--datasets", datasetsFolder,
    ], environment: ["TINYMIXER_SIMULATE_FULL_DISK": "1"])
  #expect(full.status == 1)
  #expect(full.error.hasPrefix("tinymixer: error: cannot write \(folder.path)/"), "\(full.error)")
  #expect(full.error.contains("no space left on device"))
  let left = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
  #expect(left.isEmpty, "a failed write left \(left)")

  // An output folder that cannot be made: its parent is a file.
  let file = folder.appendingPathComponent("a-file")
  try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
  try Data("x".utf8).write(to: file)
  let blocked = try runProduct(
    "tinymixer",
    [
      "pretrain", "--steps", "1", "--hidden", "8", "--layers", "1", "--heads", "2",
      "--intermediate", "8", "--batch", "4", "--out", file.appendingPathComponent("base").path,
      "--datasets", datasetsFolder,
    ])
  #expect(blocked.status == 1)
  #expect(
    blocked.error == "tinymixer: error: cannot write \(file.path)/base: Not a directory\n",
    "\(blocked.error)")
  #expect(!blocked.output.contains("pretrain step"), "found only after training")

  // A cache that cannot be written is found before the base is pretrained on demand.
  let cached = try runProduct(
    "tinymixer",
    [
      "train", "toy-sst2", "--steps", "1", "--out", folder.appendingPathComponent("adapter").path,
      "--datasets", datasetsFolder,
    ], environment: ["TINYMIXER_CACHE": file.appendingPathComponent("cache").path])
  #expect(cached.status == 1)
  #expect(cached.error.hasPrefix("tinymixer: error: cannot write \(file.path)/cache/base-"))
  #expect(cached.error.hasSuffix(": Not a directory\n"), "\(cached.error)")
  #expect(!cached.output.contains("pretrain step"), "found only after pretraining")
  #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("adapter").path))
}
