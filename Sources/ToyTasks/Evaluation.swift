import Foundation

/// Exact-match evaluation by greedy decoding.
///
/// The model is given as a function, so this module stays below the ones that define
/// models: `nextTokens(tokens, batch, length, positions)` returns, for each row of the
/// `[batch, length]` grid of ids, the most likely next id after the position given for it.
public enum ExactMatch {
  /// The model's answer to each example's prompt: from `<bos> prompt <sep>`, append the
  /// most likely token until `<eos>` or `maximumLength` tokens.
  public static func answers(
    _ examples: [Example], tokenizer: Tokenizer, maximumLength: Int, batchSize: Int = 250,
    nextTokens: ([Int], Int, Int, [Int]) -> [Int]
  ) -> [String] {
    var results: [String] = []
    for start in stride(from: 0, to: examples.count, by: batchSize) {
      let chunk = examples[start..<min(start + batchSize, examples.count)]
      var sequences = chunk.map {
        [Tokenizer.begin] + tokenizer.encode($0.prompt) + [Tokenizer.separator]
      }
      var generated = [[Int]](repeating: [], count: chunk.count)
      var finished = [Bool](repeating: false, count: chunk.count)
      for _ in 0..<maximumLength where finished.contains(false) {
        let length = sequences.map(\.count).max()!
        var grid: [Int] = []
        for sequence in sequences {
          grid += sequence + [Int](repeating: Tokenizer.pad, count: length - sequence.count)
        }
        let next = nextTokens(grid, sequences.count, length, sequences.map { $0.count - 1 })
        for row in sequences.indices where !finished[row] {
          if next[row] == Tokenizer.end {
            finished[row] = true
          } else {
            generated[row].append(next[row])
            sequences[row].append(next[row])
          }
        }
      }
      results += generated.map { tokenizer.decode($0) }
    }
    return results
  }

  /// The fraction of `answers` equal to the examples' answers.
  public static func accuracy(_ answers: [String], _ examples: [Example]) -> Double {
    guard !examples.isEmpty else { return 0 }
    return Double(zip(answers, examples).filter { $0 == $1.answer }.count) / Double(examples.count)
  }

  /// The accuracy of always giving the most common training answer: the chance level.
  public static func majorityAccuracy(train: [Example], test: [Example]) -> Double {
    var counts: [String: Int] = [:]
    for example in train { counts[example.answer, default: 0] += 1 }
    let majority = counts.max { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) }?
      .key
    return accuracy(test.map { _ in majority ?? "" }, test)
  }
}

/// Multinomial naive Bayes over the prompt's words (a bag of words: order ignored), the
/// baseline each datasheet reports.
public struct BagOfWordsBaseline {
  private var wordCounts: [String: [String: Double]] = [:]
  private var totals: [String: Double] = [:]
  private var classCounts: [String: Double] = [:]
  private var vocabulary = Set<String>()

  /// A baseline fitted on `examples`.
  public init(training examples: [Example]) {
    for example in examples {
      classCounts[example.answer, default: 0] += 1
      for word in example.prompt.split(separator: " ").map(String.init) {
        wordCounts[example.answer, default: [:]][word, default: 0] += 1
        totals[example.answer, default: 0] += 1
        vocabulary.insert(word)
      }
    }
  }

  /// The most likely answer for `prompt` (add-one smoothing; ties by answer name).
  public func predict(_ prompt: String) -> String {
    let words = prompt.split(separator: " ").map(String.init)
    let total = classCounts.values.reduce(0, +)
    var best: (score: Double, answer: String)? = nil
    for answer in classCounts.keys.sorted() {
      var score = log(classCounts[answer]! / total)
      for word in words {
        score += log(
          ((wordCounts[answer]?[word] ?? 0) + 1)
            / (totals[answer, default: 0] + Double(vocabulary.count)))
      }
      if best == nil || score > best!.score { best = (score, answer) }
    }
    return best?.answer ?? ""
  }

  /// The accuracy on `examples`.
  public func accuracy(_ examples: [Example]) -> Double {
    ExactMatch.accuracy(examples.map { predict($0.prompt) }, examples)
  }
}
