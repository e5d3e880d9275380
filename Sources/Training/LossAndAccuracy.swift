import Autodiff
import NN
import ToyTasks

extension CausalLanguageModel {
  /// The mean cross-entropy of the next-token predictions where `batch.mask` is set (the
  /// five-argument `loss` with the batch's fields).
  public func loss(_ batch: TokenBatch) -> Tensor {
    loss(
      tokens: batch.tokens, targets: batch.targets, mask: batch.mask, batch: batch.batch,
      length: batch.length)
  }

  /// The loss of `examples` scored on their answers (`answersOnly`) or on every token,
  /// and the positions computed (padding included). Answers-only batches run as up to
  /// `lengthGroups` groups of similar length, each group's mean weighted by its share of the
  /// scored positions, so the result is the mean over the whole batch.
  public func loss(
    _ examples: [Example], tokenizer: Tokenizer, answersOnly: Bool = true, lengthGroups: Int = 1
  ) -> (value: Tensor, tokens: Int) {
    guard answersOnly else {
      let batch = tokenizer.languageModelBatch(examples)
      return (loss(batch), batch.tokens.count)
    }
    let batches = tokenizer.answerBatches(examples, groups: lengthGroups)
    return (weightedLoss(batches), batches.reduce(0) { $0 + $1.tokens.count })
  }

  /// The mean cross-entropy over the scored positions of all `batches` (at least one): each
  /// batch's mean weighted by its share of them.
  public func weightedLoss(_ batches: [TokenBatch]) -> Tensor {
    let scored = batches.map { Double($0.mask.count { $0 }) }
    let total = max(1, scored.reduce(0, +))
    let parts = zip(batches, scored).map { loss($0) * ($1 / total) }
    return parts.dropFirst().reduce(parts[0], +)
  }

  /// The greedy answers to `examples`' prompts.
  public func answers(_ examples: [Example], tokenizer: Tokenizer, maximumLength: Int) -> [String] {
    ExactMatch.answers(examples, tokenizer: tokenizer, maximumLength: maximumLength) {
      tokens, batch, length, positions in
      let logits = self.logits(tokens, batch: batch, length: length).floats
      let vocabulary = vocabularySize
      return positions.enumerated().map { row, position in
        let start = (row * length + position) * vocabulary
        var best = 0
        for token in 1..<vocabulary where logits[start + token] > logits[start + best] {
          best = token
        }
        return best
      }
    }
  }

  /// The exact-match accuracy on `examples` (greedy decoding, answers up to the longest
  /// reference answer plus one token).
  public func accuracy(_ examples: [Example], tokenizer: Tokenizer) -> Double {
    let longest = examples.map { tokenizer.encode($0.answer).count }.max() ?? 1
    return ExactMatch.accuracy(
      answers(examples, tokenizer: tokenizer, maximumLength: longest + 1), examples)
  }
}
