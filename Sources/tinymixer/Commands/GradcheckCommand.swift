import Autodiff
import Experiments
import Foundation
import LoRAMixer
import NN

/// `tinymixer gradcheck`: every differentiable operation against finite differences.
enum GradcheckCommand: Command {
  static let name = "gradcheck"
  static let summary = "check every operation's gradient against finite differences (Float64)"
  static let synopsis = "tinymixer gradcheck [--filter TEXT]"
  static let options = [
    Option(name: "filter", valueName: "TEXT", help: "only checks whose name contains TEXT")
  ]

  static func run(_ arguments: Arguments) throws -> Int32 {
    try arguments.expectPositionals(0, 0, "")
    var cases =
      GradientCheckCase.operations + GradientCheckCase.layers + GradientCheckCase.lora
      + GradientCheckCase.routing
    if let filter = arguments.string("filter") {
      cases = cases.filter { $0.name.localizedCaseInsensitiveContains(filter) }
      if cases.isEmpty { throw ToolError.usage("no gradient check matches '\(filter)'") }
    }
    var table = Table(
      ["operation", "shapes", "method", "max abs error", "max rel error", "result"],
      rightAligned: [3, 4])
    var failures = 0
    for check in cases {
      let result = check.run()
      if !result.passed { failures += 1 }
      let method: String =
        switch check.method {
        case .fullJacobian: "jacobian"
        case .randomProjections(let count): "\(count) projections"
        }
      table.add([
        check.name, check.shapes, method, String(format: "%.1e", result.maxAbsoluteError),
        String(format: "%.1e", result.maxRelativeError), result.passed ? "pass" : "FAIL",
      ])
    }
    print(table.rendered)
    print(
      "\n\(cases.count - failures) of \(cases.count) passed (relative error below \(GradientCheck.defaultTolerance), Float64, central differences with step 1e-6)"
    )
    return failures == 0 ? 0 : 1
  }
}
