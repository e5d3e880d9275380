import Foundation
import Random

/// A toy task: how its examples are made, how many of each split, and the seed that makes
/// the committed files.
public struct ToyTask: Sendable {
  /// The name used on the command line and as the folder under `Datasets/`.
  public let name: String
  /// The benchmark it mirrors.
  public let mirrors: String
  /// One line on what the model must do.
  public let summary: String
  /// Examples per split.
  public let sizes: [Split: Int]
  /// The seed of the generator that makes the files.
  public let seed: UInt64
  /// Makes one example of a split. Tasks that test generalisation draw the dev and test
  /// splits from combinations the training split never holds.
  let makeExample: @Sendable (Split, inout SeededGenerator) -> Example

  /// Every split, generated from `seed`: train, then dev, then test, drawn in turn. No
  /// prompt repeats within or across splits, so no test item can be recalled from
  /// training.
  public func generate() -> [Split: [Example]] {
    var random = SeededGenerator(seed: seed)
    var seen = Set<String>()
    var splits: [Split: [Example]] = [:]
    for split in Split.allCases {
      var examples: [Example] = []
      var attempts = 0
      while examples.count < sizes[split]! {
        attempts += 1
        precondition(
          attempts < 100 * sizes[split]! + 10_000, "\(name): too few distinct prompts for \(split)")
        let example = makeExample(split, &random)
        if seen.insert(example.prompt).inserted { examples.append(example) }
      }
      splits[split] = examples
    }
    return splits
  }

  /// The file of `split` under `datasets`.
  public func file(_ split: Split, in datasets: URL) -> URL {
    datasets.appendingPathComponent(name).appendingPathComponent("\(split.rawValue).tsv")
  }

  /// The examples of `split`, read from its file under `datasets`.
  public func load(_ split: Split, from datasets: URL) throws -> [Example] {
    try TaskFile.read(file(split, in: datasets))
  }

  /// The `Datasets` folder a program reads (see `packageFolder`).
  public static func datasetsFolder(sourceRoot: URL) -> URL {
    packageFolder("Datasets", sourceRoot: sourceRoot)
  }
}

/// The package folder `name` a program reads: `./name` when the working directory has one
/// (run from a clone's root, it reads that clone's files), else the one under
/// `sourceRoot`, the package the program was built from (run from any other folder).
public func packageFolder(_ name: String, sourceRoot: URL) -> URL {
  let local = URL(fileURLWithPath: name)
  return FileManager.default.fileExists(atPath: local.path)
    ? local : sourceRoot.appendingPathComponent(name)
}

extension ToyTask {
  /// toy-sst2: sentiment of a movie review with negation, intensifiers and contrast.
  public static let sst2 = ToyTask(
    name: "toy-sst2", mirrors: "SST-2",
    summary: "sentence sentiment with negation, intensifiers and \"but\" clauses",
    sizes: [.train: 6000, .dev: 500, .test: 1000], seed: 2,
    makeExample: { _, random in ToySST2.example(&random) })

  /// toy-cola: is a sentence grammatical? One error of agreement, auxiliary, order or
  /// determiner in half of them.
  public static let cola = ToyTask(
    name: "toy-cola", mirrors: "CoLA",
    summary: "grammatical acceptability: agreement, verb forms, word order, determiners",
    sizes: [.train: 6000, .dev: 500, .test: 1000], seed: 3,
    makeExample: { _, random in ToyCoLA.example(&random) })

  /// toy-gsm8k: a two-step word problem; the test asks unseen number combinations.
  public static let gsm8k = ToyTask(
    name: "toy-gsm8k", mirrors: "GSM8K",
    summary: "two-step word problems with small numbers, unseen number combinations",
    sizes: [.train: 6000, .dev: 500, .test: 1000], seed: 4, makeExample: ToyGSM8K.example)

  /// toy-arc: which of two or three animals has the most of a property; the test compares
  /// pairs never compared in training.
  public static let arc = ToyTask(
    name: "toy-arc", mirrors: "ARC",
    summary: "multiple choice over facts learned in training, asked about unseen pairs",
    sizes: [.train: 6000, .dev: 500, .test: 1000], seed: 5, makeExample: ToyARC.example)

  /// toy-medqa: a diagnosis from three symptoms; the test holds unseen combinations.
  public static let medqa = ToyTask(
    name: "toy-medqa", mirrors: "MedQA",
    summary: "diagnosis from three symptoms, unseen symptom combinations",
    sizes: [.train: 6000, .dev: 500, .test: 1000], seed: 6, makeExample: ToyMedQA.example)

  /// toy-humaneval: what a tiny straight-line program prints; the test holds unseen
  /// program shapes.
  public static let humaneval = ToyTask(
    name: "toy-humaneval", mirrors: "HumanEval",
    summary: "the output of a tiny straight-line program, unseen program shapes",
    sizes: [.train: 6000, .dev: 500, .test: 1000], seed: 7, makeExample: ToyHumanEval.example)

  /// Every toy task, in the order they are listed.
  public static let all: [ToyTask] = [.sst2, .cola, .gsm8k, .arc, .medqa, .humaneval]

  /// The task called `name`, if there is one.
  public static func named(_ name: String) -> ToyTask? { all.first { $0.name == name } }
}
