import Foundation

/// A word-level tokenizer: every word of every task file is one token.
///
/// Ids 0 to 4 are the special tokens `<pad>`, `<unk>`, `<bos>`, `<sep>`, `<eos>`; the
/// words follow in sorted order, so a set of task files always gives the same ids.
public struct Tokenizer: Equatable, Sendable {
  /// The special tokens, in id order.
  public static let specials = ["<pad>", "<unk>", "<bos>", "<sep>", "<eos>"]
  /// Id of the padding token.
  public static let pad = 0
  /// Id of the token for unknown words.
  public static let unknown = 1
  /// Id of the token that starts a sequence.
  public static let begin = 2
  /// Id of the token between prompt and answer.
  public static let separator = 3
  /// Id of the token that ends a sequence.
  public static let end = 4

  /// Every token, by id.
  public let tokens: [String]
  private let ids: [String: Int]

  /// A tokenizer with the special tokens followed by `words` (sorted, without repeats).
  public init(words: some Sequence<String>) {
    let sorted = Set(words).subtracting(Self.specials).sorted()
    tokens = Self.specials + sorted
    ids = Dictionary(uniqueKeysWithValues: tokens.enumerated().map { ($1, $0) })
  }

  /// A tokenizer over every word of `examples`.
  public init(examples: [Example]) {
    self.init(
      words: examples.flatMap {
        ($0.prompt + " " + $0.answer).split(separator: " ").map(String.init)
      })
  }

  /// The number of tokens.
  public var count: Int { tokens.count }

  /// The ids of the space-separated words of `text` (`<unk>` for a word not known).
  public func encode(_ text: String) -> [Int] {
    text.split(separator: " ").map { ids[String($0)] ?? Self.unknown }
  }

  /// The words of `ids` joined by spaces.
  public func decode(_ ids: [Int]) -> String {
    ids.map { $0 >= 0 && $0 < tokens.count ? tokens[$0] : "<unk>" }.joined(separator: " ")
  }

  /// A short, stable fingerprint of the vocabulary (FNV-1a of every token), so that a model
  /// saved with another vocabulary is recognised, rebuilt and never misread.
  public var fingerprint: String { stableHash(tokens.joined(separator: "\n")) }
}

/// FNV-1a (64 bits) of `text`'s UTF-8 bytes, in hexadecimal: a name that is the same on
/// every machine and Swift version (Swift's own `Hasher` is seeded per process).
public func stableHash(_ text: String) -> String {
  var hash: UInt64 = 0xcbf2_9ce4_8422_2325
  for byte in text.utf8 {
    hash ^= UInt64(byte)
    hash = hash &* 0x0000_0100_0000_01B3
  }
  return String(hash, radix: 16)
}
