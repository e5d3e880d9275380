import Random

/// toy-arc, mirroring ARC: multiple-choice questions over facts learned in training.
///
/// Twelve animals have a fixed size, speed and lifespan (each a different order). A
/// question names a property and two or three animals; the answer is the one with the most
/// of it:
///
///     which is faster : cow , hare or snail ?  →  hare
///
/// The facts are never stated; the model learns each animal's place in each order from the
/// training questions. Some pairs of animals are never compared in training: the dev and
/// test splits ask only questions that compare such a pair, so the model must place the
/// animals on a scale, not recall answers.
enum ToyARC {
  /// The animals, from the smallest to the largest.
  static let animals = [
    "ant", "snail", "mouse", "frog", "rabbit", "cat", "fox", "dog", "goat", "deer", "cow",
    "horse",
  ]
  /// Each property's question and each animal's value (a rank, larger is more).
  static let properties: [(questions: [String], value: [Int])] = [
    (["which is bigger", "which one is bigger", "which animal is bigger"], Array(0..<12)),
    // Speed and lifespan rank the same animals in other orders.
    (
      ["which is faster", "which one is faster", "which animal is faster"],
      [1, 0, 4, 2, 8, 6, 9, 7, 5, 11, 3, 10]
    ),
    (
      ["which lives longer", "which one lives longer", "which animal lives longer"],
      [0, 3, 1, 2, 4, 8, 5, 7, 9, 6, 10, 11]
    ),
  ]

  /// One example of `split`.
  static func example(_ split: Split, _ random: inout SeededGenerator) -> Example {
    while true {
      let property = properties[random.nextInt(below: properties.count)]
      let options = Array(
        random.shuffled(Array(animals.indices)).prefix(2 + random.nextInt(below: 2)))
      let holdsHeldOutPair = options.indices.contains { a in
        options.indices.contains { b in
          a < b && isHeldOut([min(options[a], options[b]), max(options[a], options[b])], oneIn: 8)
        }
      }
      guard holdsHeldOutPair == (split != .train) else { continue }
      let names = options.map { animals[$0] }
      let listed =
        names.count == 2
        ? "\(names[0]) or \(names[1])" : "\(names[0]) , \(names[1]) or \(names[2])"
      let best = options.max { property.value[$0] < property.value[$1] }!
      return Example(
        prompt: "\(property.questions[random.nextInt(below: 3)]) : \(listed) ?",
        answer: animals[best])
    }
  }
}
