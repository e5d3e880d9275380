/// An error that ends the tool: a usage error (exit status 2) or a failed run (1).
public enum ToolError: Error, CustomStringConvertible {
  /// The command line itself is wrong: an unknown command or option, a bad value.
  case usage(String)
  /// The command was understood but could not do its work.
  case failure(String)
  /// The output is being written by another run (exit status 2, no usage lines).
  case busy(String)
  /// Ctrl-C stopped the run after saving its state (exit status 130, as for SIGINT).
  case interrupted(String)

  public var description: String {
    switch self {
    case .usage(let message), .failure(let message), .busy(let message),
      .interrupted(let message):
      message
    }
  }

  /// The process exit status for this error.
  public var exitStatus: Int32 {
    switch self {
    case .usage, .busy: 2
    case .failure: 1
    case .interrupted: 130
    }
  }
}
