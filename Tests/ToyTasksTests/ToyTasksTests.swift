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
  // Row 0: <bos> a b <sep> yes <eos>; row 1: <bos> c <sep> yes <eos> <pad>.
  #expect(batch.length == 5)
  #expect(Array(batch.tokens[0..<5]) == [2, 5, 6, 3, 8])
  #expect(Array(batch.targets[0..<5]) == [5, 6, 3, 8, 4])
  #expect(Array(batch.mask[0..<5]) == [false, false, false, true, true])
  #expect(Array(batch.tokens[5..<10]) == [2, 7, 3, 8, 4])
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
