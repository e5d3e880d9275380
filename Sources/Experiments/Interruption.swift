import Foundation
import Synchronization

/// Ctrl-C during training: the first asks the run to save its state and stop after the
/// current step; a second one ends the process at once.
public enum Interruption {
  /// Whether Ctrl-C was pressed.
  static let requested = Atomic<Bool>(false)

  /// Installs the SIGINT handler.
  public static func install() {
    signal(SIGINT) { _ in
      if Interruption.requested.exchange(true, ordering: .relaxed) { _exit(130) }
    }
  }

  /// Whether the run should stop now.
  public static var isRequested: Bool { requested.load(ordering: .relaxed) }
}
