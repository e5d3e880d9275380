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
  (["bench", "matmul", "--threads", "0"], "--threads needs a whole number of at least 1"),
  (["bench", "lunch"], "unknown benchmark 'lunch'"),
  (["bench"], "missing what to measure"),
])
func misuseIsAOneLineUsageError(arguments: [String], message: String) throws {
  let run = try runProduct("tinymixer", arguments)
  #expect(run.status == 2)
  #expect(run.error.hasPrefix("tinymixer: error: \(message)"), "stderr: \(run.error)")
  #expect(run.output.isEmpty)
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
