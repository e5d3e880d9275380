import Autodiff

/// Token sequences for a causal language model, padded into a `[batch, length]` grid.
///
/// Position t of row r reads `tokens[r·length + t]` and is scored on predicting
/// `targets[r·length + t]` if `mask` is true there.
public struct TokenBatch: Equatable, Sendable {
  /// Input ids, row-major.
  public var tokens: [Int]
  /// The next id at each position.
  public var targets: [Int]
  /// Which positions count in the loss.
  public var mask: [Bool]
  /// Rows.
  public var batch: Int
  /// Positions per row.
  public var length: Int

  /// A batch from its parts (`tokens`, `targets` and `mask` row-major, `batch × length`).
  public init(tokens: [Int], targets: [Int], mask: [Bool], batch: Int, length: Int) {
    (self.tokens, self.targets, self.mask) = (tokens, targets, mask)
    (self.batch, self.length) = (batch, length)
  }
}

extension Tokenizer {
  /// `<bos> prompt <sep> answer <eos>` as ids, and the index of `<sep>`.
  public func sequence(_ example: Example) -> (ids: [Int], separator: Int) {
    let prompt = encode(example.prompt)
    return (
      [Tokenizer.begin] + prompt + [Tokenizer.separator] + encode(example.answer) + [Tokenizer.end],
      prompt.count + 1
    )
  }

  /// A batch of examples scored on their answers only: the positions that predict the
  /// answer's tokens and the final `<eos>`. Rows are padded with `<pad>` to the longest.
  public func answerBatch(_ examples: [Example]) -> TokenBatch {
    batch(examples.map(sequence)) { position, separator in position >= separator }
  }

  /// A batch scored on every next token (pretraining a language model).
  public func languageModelBatch(_ examples: [Example]) -> TokenBatch {
    batch(examples.map(sequence)) { _, _ in true }
  }

  private func batch(_ sequences: [(ids: [Int], separator: Int)], scores: (Int, Int) -> Bool)
    -> TokenBatch
  {
    let length = sequences.map { $0.ids.count - 1 }.max() ?? 0
    var result = TokenBatch(
      tokens: [], targets: [], mask: [], batch: sequences.count, length: length)
    for (ids, separator) in sequences {
      for t in 0..<length {
        let inside = t + 1 < ids.count
        result.tokens.append(t < ids.count ? ids[t] : Tokenizer.pad)
        result.targets.append(inside ? ids[t + 1] : Tokenizer.pad)
        result.mask.append(inside && scores(t, separator))
      }
    }
    return result
  }
}

/// The training examples in the order one training run sees them: shuffled afresh each
/// epoch from a seed, cut into batches of `batchSize`.
public struct BatchOrder: Sendable {
  /// The examples to draw from.
  public let examples: [Example]
  /// Examples per batch.
  public let batchSize: Int
  /// The seed of the shuffles.
  public let seed: UInt64

  /// An order over `examples`.
  public init(_ examples: [Example], batchSize: Int, seed: UInt64) {
    precondition(!examples.isEmpty && batchSize > 0, "no examples to batch")
    self.examples = examples
    self.batchSize = batchSize
    self.seed = seed
  }

  /// The examples of batch number `step` (from 0). Each epoch is a fresh permutation from
  /// `seed` and the epoch number, so any step can be found again (resuming a run).
  public func batch(_ step: Int) -> [Example] {
    let perEpoch = max(1, examples.count / batchSize)
    let epoch = step / perEpoch
    let index = step % perEpoch
    var random = SeededGenerator(seed: seed &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
    let order = random.shuffled(Array(examples.indices))
    let start = index * batchSize
    return (start..<min(start + batchSize, examples.count)).map { examples[order[$0]] }
  }
}
