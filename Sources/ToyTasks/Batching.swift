import Random

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
  /// answer's tokens and the final `<eos>`. Rows are padded with `<pad>` to the longest
  /// (`<eos>` is only ever a target, so a row's real inputs are the same however long the
  /// batch it sits in).
  public func answerBatch(_ examples: [Example]) -> TokenBatch {
    answerBatch(examples.map(sequence))
  }

  /// The examples of one training batch as up to `groups` batches of similar length, each
  /// padded to its own longest, so that less of the work is padding: a mixed batch of 64 from
  /// the six toy tasks padded as one is about 60% real tokens, as three groups about 87%
  /// (the mean over 300 random batches of the training splits). The
  /// groups are cut in the examples sorted by length where they pad least (ties keep the
  /// given order). Every row is computed alone by the model, so a loss summed over the
  /// groups is the loss of the whole batch, up to the order of the additions. One group is
  /// `answerBatch` itself, rows in the given order, so results stay bit for bit the same.
  public func answerBatches(_ examples: [Example], groups: Int) -> [TokenBatch] {
    guard groups > 1 else { return [answerBatch(examples)] }
    let sequences = examples.map(sequence)
    let order = sequences.indices.sorted {
      (sequences[$0].ids.count, $0) < (sequences[$1].ids.count, $1)
    }
    let lengths = order.map { sequences[$0].ids.count - 1 }
    return lengthGroups(lengths, groups: groups).map { range in
      answerBatch(range.map { sequences[order[$0]] })
    }
  }

  /// A batch scored on every next token (pretraining a language model).
  public func languageModelBatch(_ examples: [Example]) -> TokenBatch {
    batch(examples.map(sequence)) { _, _ in true }
  }

  /// `sequences` scored on their answers: the positions from `<sep>` on.
  private func answerBatch(_ sequences: [(ids: [Int], separator: Int)]) -> TokenBatch {
    batch(sequences) { position, separator in position >= separator }
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
        result.tokens.append(inside ? ids[t] : Tokenizer.pad)
        result.targets.append(inside ? ids[t + 1] : Tokenizer.pad)
        result.mask.append(inside && scores(t, separator))
      }
    }
    return result
  }
}

/// Cuts rows of ascending `lengths` into at most `groups` consecutive ranges, each padded to
/// its last (longest) row, so that the padded total `Σ rows × longest` is least. Dynamic
/// programming over the cut points; the batches are small, so the cubic cost is nothing.
func lengthGroups(_ lengths: [Int], groups: Int) -> [Range<Int>] {
  let count = lengths.count
  guard count > 0 else { return [] }
  let most = max(1, min(groups, count))
  // cost[g][end]: the least padded total of rows 0..<end in g groups; cut[g][end] its last cut.
  var cost = [[Int]](repeating: [Int](repeating: .max, count: count + 1), count: most + 1)
  var cut = [[Int]](repeating: [Int](repeating: 0, count: count + 1), count: most + 1)
  cost[0][0] = 0
  for used in 1...most {
    for end in used...count {
      for start in (used - 1)..<end where cost[used - 1][start] != .max {
        let total = cost[used - 1][start] + (end - start) * lengths[end - 1]
        if total < cost[used][end] { (cost[used][end], cut[used][end]) = (total, start) }
      }
    }
  }
  let best = (1...most).min { cost[$0][count] < cost[$1][count] }!
  var ranges: [Range<Int>] = []
  var end = count
  for used in stride(from: best, through: 1, by: -1) {
    ranges.insert(cut[used][end]..<end, at: 0)
    end = cut[used][end]
  }
  return ranges
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
