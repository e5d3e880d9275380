import Foundation
import SafeTensors

extension Tokenizer {
  /// `tokenizer.json` in the Hugging Face tokenizers format: a WordLevel model that splits
  /// on white space, with the special tokens as added tokens.
  public var tokenizerJSON: JSON {
    let added: [JSON] = Self.specials.enumerated().map { id, token in
      .object([
        ("id", .integer(id)), ("content", .string(token)), ("single_word", .bool(false)),
        ("lstrip", .bool(false)), ("rstrip", .bool(false)), ("normalized", .bool(false)),
        ("special", .bool(true)),
      ])
    }
    return .object([
      ("version", .string("1.0")), ("truncation", .null), ("padding", .null),
      ("added_tokens", .array(added)), ("normalizer", .null),
      ("pre_tokenizer", .object([("type", .string("WhitespaceSplit"))])), ("post_processor", .null),
      ("decoder", .null),
      (
        "model",
        .object([
          ("type", .string("WordLevel")),
          ("vocab", .object(tokens.enumerated().map { ($1, .integer($0)) })),
          ("unk_token", .string("<unk>")),
        ])
      ),
    ])
  }

  /// `tokenizer_config.json`, so that `AutoTokenizer` loads `tokenizer.json` as a fast
  /// tokenizer with these special tokens.
  public func tokenizerConfigJSON(contextLength: Int) -> JSON {
    .object([
      ("tokenizer_class", .string("PreTrainedTokenizerFast")), ("bos_token", .string("<bos>")),
      ("eos_token", .string("<eos>")), ("pad_token", .string("<pad>")),
      ("unk_token", .string("<unk>")),
      ("sep_token", .string("<sep>")), ("model_max_length", .integer(contextLength)),
    ])
  }

  /// The ids a model's `config.json` records.
  public var tokenIds: [String: Int] {
    ["bos_token_id": Self.begin, "eos_token_id": Self.end, "pad_token_id": Self.pad]
  }

  /// Writes `tokenizer.json` and `tokenizer_config.json` into `directory`, atomically.
  public func save(to directory: URL, contextLength: Int) throws {
    try writeAtomically(
      Data((tokenizerJSON.prettyText() + "\n").utf8),
      to: directory.appendingPathComponent("tokenizer.json"))
    try writeAtomically(
      Data((tokenizerConfigJSON(contextLength: contextLength).prettyText() + "\n").utf8),
      to: directory.appendingPathComponent("tokenizer_config.json"))
  }

  /// Reads the `tokenizer.json` of `directory`: a WordLevel vocabulary whose first ids are
  /// this tokenizer's special tokens and whose ids run from 0 without gaps.
  public static func load(from directory: URL) throws -> Tokenizer {
    let url = directory.appendingPathComponent("tokenizer.json")
    guard let data = try? Data(contentsOf: url) else {
      throw DatasetError(path: url.path, line: nil, message: "cannot read")
    }
    let json: JSON
    do { json = try JSON.parse(data) } catch {
      throw DatasetError(path: url.path, line: nil, message: "invalid JSON: \(error)")
    }
    guard json["model"]?["type"]?.string == "WordLevel",
      let vocabulary = json["model"]?["vocab"]?.object
    else {
      throw DatasetError(path: url.path, line: nil, message: "not a WordLevel tokenizer")
    }
    var tokens = [String?](repeating: nil, count: vocabulary.count)
    for (token, id) in vocabulary {
      guard let id = id.integer, id >= 0, id < tokens.count, tokens[id] == nil else {
        throw DatasetError(
          path: url.path, line: nil,
          message: "token '\(token)' has an id out of 0..<\(tokens.count) or taken twice")
      }
      tokens[id] = token
    }
    let all = tokens.compactMap { $0 }
    guard Array(all.prefix(specials.count)) == specials else {
      throw DatasetError(
        path: url.path, line: nil, message: "ids 0 to 4 must be \(specials.joined(separator: ", "))"
      )
    }
    let tokenizer = Tokenizer(words: all.dropFirst(specials.count))
    guard tokenizer.tokens == all else {
      throw DatasetError(path: url.path, line: nil, message: "words are not in sorted order")
    }
    return tokenizer
  }
}
