import Foundation

/// What checking an exercise found: whether it passed and a line per thing it compared.
public struct ExerciseResult: Sendable {
  /// The exercise, as the lesson's README names it.
  public var name: String
  /// One line per comparison: what was compared and how far apart the two were.
  public var lines: [String] = []
  /// Whether every comparison held.
  public var passed = true

  init(_ name: String) { self.name = name }

  /// Records one comparison: `holds` says whether it passed, `line` what it compared.
  mutating func expect(_ holds: Bool, _ line: String) {
    lines.append((holds ? "  ok       " : "  not yet  ") + line)
    passed = passed && holds
  }

  /// Prints the result and returns the exit status: 0 when it passed, 1 when not yet.
  public func report() -> Int32 {
    print("exercise: \(name)")
    for line in lines { print(line) }
    print(passed ? "passed" : "not yet: change the exercise file and run the check again")
    return passed ? 0 : 1
  }
}

/// The largest absolute difference between two lists of numbers of the same length
/// (infinity when the lengths differ).
func largestDifference(_ a: [Double], _ b: [Double]) -> Double {
  guard a.count == b.count else { return .infinity }
  return zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

/// `1.2e-15` for a difference.
func scientific(_ value: Double) -> String { String(format: "%.1e", value) }
