/// One item of a toy task: a prompt and the answer the model must produce after it.
/// Both are space-separated words.
public struct Example: Equatable, Hashable, Sendable {
  /// The words before `<sep>`.
  public var prompt: String
  /// The words the model must generate after `<sep>`, before `<eos>`.
  public var answer: String

  /// An example.
  public init(prompt: String, answer: String) {
    self.prompt = prompt
    self.answer = answer
  }
}

/// The three splits of a task.
public enum Split: String, CaseIterable, Sendable {
  case train, dev, test
}
