import Experiments
import Foundation
import SafeTensors
import ToyTasks
import Training

/// `tinymixer datasets`: the toy tasks, their files, and regenerating them.
enum DatasetsCommand: Command {
  static let name = "datasets"
  static let summary =
    "list the toy tasks and check (or rewrite) their files against the generators"
  static let synopsis = "tinymixer datasets [--write] [--baselines] [--datasets DIR]"
  static let options = [
    Option(
      name: "write", valueName: nil, help: "regenerate every file from its seed, byte for byte"),
    Option(
      name: "baselines", valueName: nil,
      help: "also measure the majority-answer and bag-of-words accuracies on each test split"),
    Locations.datasetsOption,
  ]

  static func run(_ arguments: Arguments) throws -> Int32 {
    try arguments.expectPositionals(0, 0, "")
    let folder = try Locations.datasets(arguments)
    let baselines = arguments.has("baselines")
    var table = Table(
      ["task", "mirrors", "train", "dev", "test", "files"]
        + (baselines ? ["majority", "bag of words"] : []),
      rightAligned: [2, 3, 4, 6, 7])
    var mismatches = 0
    for task in ToyTask.all {
      let splits = task.generate()
      var status = "match the generator"
      for split in Split.allCases {
        let expected = Data(TaskFile.format(splits[split]!).utf8)
        let url = task.file(split, in: folder)
        if arguments.has("write") {
          try writeAtomically(expected, to: url)
          status = "written"
        } else if (try? Data(contentsOf: url)) != expected {
          status = "DIFFER from the generator (\(split.rawValue))"
          mismatches += 1
          break
        }
      }
      var row = [task.name, task.mirrors] + Split.allCases.map { "\(task.sizes[$0]!)" } + [status]
      if baselines {
        let train = splits[.train]!
        let test = splits[.test]!
        row.append(
          String(format: "%.1f%%", 100 * ExactMatch.majorityAccuracy(train: train, test: test)))
        row.append(
          String(format: "%.1f%%", 100 * BagOfWordsBaseline(training: train).accuracy(test)))
      }
      table.add(row)
    }
    print(table.rendered)
    print("\nfolder: \(folder.path)")
    if mismatches > 0 { print("run 'tinymixer datasets --write' to regenerate them") }
    return mismatches == 0 ? 0 : 1
  }
}
