import Foundation
import Testing

@testable import ToyTasks

let datasets = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
  .deletingLastPathComponent()
  .deletingLastPathComponent().appendingPathComponent("Datasets")

@Test(arguments: ToyTask.all.map(\.name))
func committedFilesEqualAFreshGeneration(task name: String) throws {
  let task = ToyTask.named(name)!
  let splits = task.generate()
  for split in Split.allCases {
    let committed = try Data(contentsOf: task.file(split, in: datasets))
    #expect(
      committed == Data(TaskFile.format(splits[split]!).utf8), "\(name) \(split.rawValue) differs")
    #expect(splits[split]!.count == task.sizes[split])
  }
}

@Test(arguments: ToyTask.all.map(\.name))
func splitsShareNoPrompt(task name: String) {
  let splits = ToyTask.named(name)!.generate()
  let train = Set(splits[.train]!.map(\.prompt))
  #expect(splits[.test]!.allSatisfy { !train.contains($0.prompt) })
  #expect(splits[.dev]!.allSatisfy { !train.contains($0.prompt) })
}

@Test func sst2LabelsAreBalancedAndNeedMoreThanCountingWords() {
  let splits = ToyTask.sst2.generate()
  let positive = splits[.train]!.filter { $0.answer == "positive" }.count
  #expect(abs(Double(positive) / 6000 - 0.5) < 0.03)
  let baseline = BagOfWordsBaseline(training: splits[.train]!).accuracy(splits[.test]!)
  #expect(baseline < 0.7, "bag of words reaches \(baseline)")
  #expect(splits[.train]!.contains { $0.prompt.contains(" but ") && $0.prompt.contains(" not ") })
}

@Test func tokenizerHasFixedSpecialsAndSortedWords() {
  let tokenizer = Tokenizer(words: ["zebra", "apple", "apple", "<eos>"])
  #expect(tokenizer.tokens == ["<pad>", "<unk>", "<bos>", "<sep>", "<eos>", "apple", "zebra"])
  #expect(tokenizer.encode("zebra apple kiwi") == [6, 5, Tokenizer.unknown])
  #expect(tokenizer.decode([5, 6]) == "apple zebra")
  #expect(tokenizer.fingerprint != Tokenizer(words: ["apple", "zebra", "kiwi"]).fingerprint)
}

@Test func tokenizerFilesRoundTrip() throws {
  let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
    "tokenizer-\(UUID().uuidString)")
  defer { try? FileManager.default.removeItem(at: folder) }
  let tokenizer = Tokenizer(examples: ToyTask.sst2.generate()[.dev]!)
  try tokenizer.save(to: folder, contextLength: 64)
  #expect(try Tokenizer.load(from: folder) == tokenizer)
  let json = try String(
    contentsOf: folder.appendingPathComponent("tokenizer.json"), encoding: .utf8)
  #expect(json.contains("\"type\": \"WordLevel\""))
}

@Test func answerBatchesScoreTheAnswerAndEndOnly() {
  let tokenizer = Tokenizer(words: ["a", "b", "c", "yes"])
  let batch = tokenizer.answerBatch([
    Example(prompt: "a b", answer: "yes"), Example(prompt: "c", answer: "yes"),
  ])
  // Row 0: <bos> a b <sep> yes → a b <sep> yes <eos>; row 1: <bos> c <sep> yes <pad>.
  #expect(batch.length == 5)
  #expect(Array(batch.tokens[0..<5]) == [2, 5, 6, 3, 8])
  #expect(Array(batch.targets[0..<5]) == [5, 6, 3, 8, 4])
  #expect(Array(batch.mask[0..<5]) == [false, false, false, true, true])
  #expect(Array(batch.tokens[5..<10]) == [2, 7, 3, 8, 0])
  #expect(Array(batch.targets[5..<10]) == [7, 3, 8, 4, 0])
  #expect(Array(batch.mask[5..<10]) == [false, false, true, true, false])
  #expect(
    tokenizer.languageModelBatch([Example(prompt: "a", answer: "yes")]).mask == [
      true, true, true, true,
    ])
}

@Test func batchOrderIsAReproduciblePermutationPerEpoch() {
  let examples = (0..<10).map { Example(prompt: "p\($0)", answer: "a") }
  let order = BatchOrder(examples, batchSize: 5, seed: 3)
  let epoch = order.batch(0) + order.batch(1)
  #expect(Set(epoch.map(\.prompt)).count == 10)
  #expect(order.batch(1) == BatchOrder(examples, batchSize: 5, seed: 3).batch(1))
  #expect(order.batch(2) + order.batch(3) != epoch)
}

@Test(arguments: [
  ("a b\tyes\nc\n", 2, "expected 'prompt<TAB>answer', found 1 field"),
  ("a\tb\tc\n", 1, "expected 'prompt<TAB>answer', found 3 fields"),
  ("a\t\n", 1, "empty answer"),
  ("a  b\tyes\n", 1, "prompt must be words separated by single spaces"),
  ("a\tyes", 1, "the last line has no line break"),
])
func malformedLinesAreNamedByFileAndLine(text: String, line: Int, message: String) {
  #expect(throws: DatasetError(path: "x.tsv", line: line, message: message)) {
    try TaskFile.parse(text, path: "x.tsv")
  }
}

@Test func greedyDecodingStopsAtEndAndComparesExactly() {
  let tokenizer = Tokenizer(words: ["q", "yes", "no"])
  let examples = [Example(prompt: "q", answer: "yes"), Example(prompt: "q q", answer: "no")]
  // A fake model: answers "yes" then <eos> for every row.
  let yes = tokenizer.encode("yes")[0]
  let answers = ExactMatch.answers(examples, tokenizer: tokenizer, maximumLength: 3) {
    tokens, batch, length, positions in
    positions.enumerated().map { row, position in
      tokens[row * length + position] == Tokenizer.separator ? yes : Tokenizer.end
    }
  }
  #expect(answers == ["yes", "yes"])
  #expect(ExactMatch.accuracy(answers, examples) == 0.5)
}

// MARK: Generalisation: the test splits hold only what training never does

/// The words of a prompt.
private func words(_ example: Example) -> [String] {
  example.prompt.split(separator: " ").map(String.init)
}

@Test func gsm8kAnswersAreTheArithmeticAndTestNumbersAreNewCombinations() {
  let splits = ToyTask.gsm8k.generate()
  func numbers(_ example: Example) -> [Int] {
    // "has N", then each change: "N more" is a gain, any other number a loss.
    let tokens = words(example)
    return tokens.indices.compactMap { index in
      guard let value = Int(tokens[index]) else { return nil }
      if tokens[index - 1] == "has" { return value }
      return index + 1 < tokens.count && tokens[index + 1] == "more" ? value : -value
    }
  }
  for split in Split.allCases {
    for example in splits[split]! {
      #expect(String(numbers(example).reduce(0, +)) == example.answer, "\(example)")
    }
  }
  let trained = Set(splits[.train]!.map(numbers))
  #expect(splits[.test]!.allSatisfy { !trained.contains(numbers($0)) })
  #expect(Set(splits[.test]!.map(\.answer)).count >= 8)
}

@Test func arcTestQuestionsCompareAPairNeverComparedInTraining() {
  let splits = ToyTask.arc.generate()
  func options(_ example: Example) -> Set<String> {
    Set(words(example).drop { $0 != ":" }.dropFirst().filter { ![",", "or", "?"].contains($0) })
  }
  func pairs(_ example: Example) -> [Set<String>] {
    let list = options(example).sorted()
    return list.indices.flatMap { a in (a + 1..<list.count).map { Set([list[a], list[$0]]) } }
  }
  let compared = Set(splits[.train]!.flatMap(pairs))
  for example in splits[.test]! {
    #expect(options(example).contains(example.answer))
    #expect(pairs(example).contains { !compared.contains($0) }, "\(example.prompt)")
  }
}

@Test func medqaTestCombinationsAreNewAndEachCombinationHasOneDisease() {
  let splits = ToyTask.medqa.generate()
  func symptoms(_ example: Example) -> Set<String> {
    let tokens = words(example)
    let start = tokens.firstIndex(of: "has")! + 1
    return Set(tokens[start..<tokens.firstIndex(of: ".")!].filter { $0 != "," && $0 != "and" })
  }
  var disease: [Set<String>: String] = [:]
  for example in Split.allCases.flatMap({ splits[$0]! }) {
    #expect(
      disease.updateValue(example.answer, forKey: symptoms(example)) ?? example.answer
        == example.answer)
  }
  let trained = Set(splits[.train]!.map(symptoms))
  #expect(splits[.test]!.allSatisfy { !trained.contains(symptoms($0)) })
  // No single symptom decides: each appears with more than one disease in training.
  var diseases: [String: Set<String>] = [:]
  for example in splits[.train]! {
    for symptom in symptoms(example) { diseases[symptom, default: []].insert(example.answer) }
  }
  #expect(diseases.count == 24 && diseases.values.allSatisfy { $0.count == 2 })
}

@Test func humanevalAnswersAreWhatTheProgramPrintsAndTestListsAreNew() {
  let splits = ToyTask.humaneval.generate()
  func digits(_ example: Example) -> [Int] {
    let tokens = words(example)
    return tokens[tokens.firstIndex(of: "[")!..<tokens.firstIndex(of: "]")!].compactMap { Int($0) }
  }
  // A tiny interpreter for the one call each program makes.
  func printed(_ example: Example) -> Int {
    let list = digits(example)
    let call = example.prompt.split(separator: ";")[1]
    if call.contains("max") { return list.max()! }
    if call.contains("min") { return list.min()! }
    if call.contains("len") { return list.count }
    return list[0]
  }
  for example in splits[.train]! + splits[.test]! {
    #expect(String(printed(example)) == example.answer, "\(example.prompt)")
  }
  let trained = Set(splits[.train]!.map(digits))
  #expect(splits[.test]!.allSatisfy { !trained.contains(digits($0)) })
}

@Test func lengthGroupsCutWherePaddingIsLeast() {
  #expect(lengthGroups([2, 2, 3, 9, 9], groups: 2) == [0..<3, 3..<5])
  #expect(lengthGroups([2, 2, 3, 9, 9], groups: 3) == [0..<2, 2..<3, 3..<5])
  #expect(lengthGroups([2, 2, 3, 9, 9], groups: 1) == [0..<5])
  // Equal lengths gain nothing from a cut: one group.
  #expect(lengthGroups([4, 4, 4], groups: 3) == [0..<3])
  #expect(lengthGroups([], groups: 3).isEmpty)
}

@Test func answerBatchesKeepEveryExampleOnceInLessPadding() {
  let tokenizer = Tokenizer(words: ["a", "b", "c", "yes"])
  let examples = ["a b c a b c", "a", "b c", "a b c a b", "c"].map {
    Example(prompt: $0, answer: "yes")
  }
  let whole = tokenizer.answerBatch(examples)
  let groups = tokenizer.answerBatches(examples, groups: 2)
  #expect(groups.count == 2)
  #expect(groups.map(\.batch) == [3, 2])
  #expect(groups.reduce(0) { $0 + $1.tokens.count } < whole.tokens.count)
  // The rows of the groups are the rows of the whole batch, unpadded, in another order.
  func rows(_ batch: TokenBatch) -> [[Int]] {
    (0..<batch.batch).map { row in
      Array(batch.tokens[(row * batch.length)..<((row + 1) * batch.length)]).filter {
        $0 != Tokenizer.pad
      }
    }
  }
  let order = { (a: [Int], b: [Int]) in a.lexicographicallyPrecedes(b) }
  #expect(groups.flatMap(rows).sorted(by: order) == rows(whole).sorted(by: order))
  #expect(groups.map { $0.mask.count { $0 } }.reduce(0, +) == whole.mask.count { $0 })
}
