import Foundation
import LoRAMixer
import Training

/// Shows a training run's progress: on a terminal, one line rewritten in place; otherwise a
/// plain line every tenth of the run, so logs stay readable.
public struct ProgressDisplay {
  let label: String
  let interactive = isatty(STDOUT_FILENO) != 0
  private var lastShown = 0

  /// A display whose lines start with `label`.
  public init(_ label: String) { self.label = label }

  /// Shows `report`.
  public mutating func show(_ report: StepReport) {
    let rate = Double(report.tokens * report.step) / max(report.elapsed, 1e-9)
    let left = report.elapsed / Double(report.step) * Double(report.steps - report.step)
    let clipped = report.clippedSteps > 0 ? "  clipped \(report.clippedSteps)" : ""
    let line = String(
      format: "%@ step %d/%d  loss %.4f  lr %.1e  %.0f tokens/s  %@ left%@", label, report.step,
      report.steps,
      report.loss, report.learningRate, rate, formatDuration(left), clipped)
    if interactive {
      FileHandle.standardOutput.write(Data("\r\u{1B}[K\(line)".utf8))
      if report.step == report.steps { print("") }
    } else if report.step == report.steps || report.step - lastShown >= max(1, report.steps / 10) {
      print(line)
      lastShown = report.step
    }
  }
}

/// `m:ss` for a number of seconds.
public func formatDuration(_ seconds: Double) -> String {
  guard seconds.isFinite else { return "?" }
  let whole = Int(seconds.rounded())
  return String(format: "%d:%02d", whole / 60, whole % 60)
}

/// A percentage with one decimal.
public func percent(_ fraction: Double) -> String { String(format: "%.1f%%", 100 * fraction) }

/// A count with thousands separators: 65,536.
public func grouped(_ value: Int) -> String {
  let digits = String(value)
  var result = ""
  for (index, character) in digits.reversed().enumerated() {
    if index > 0 && index % 3 == 0 { result.append(",") }
    result.append(character)
  }
  return String(result.reversed())
}
