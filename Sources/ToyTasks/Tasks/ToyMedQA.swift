import Random

/// toy-medqa, mirroring MedQA: a diagnosis from a few symptoms.
///
/// Eight made-up diseases each show six of twenty-four symptoms, and every symptom belongs
/// to two diseases, so no single symptom decides; two diseases share at most one symptom,
/// so two symptoms do. A patient shows three symptoms of one disease:
///
///     an old man has nausea , fatigue and sneezing . diagnosis ?  →  measles
///
/// The dev and test splits ask only symptom combinations the training split never holds,
/// so the model must weigh the symptoms, not recall patients.
enum ToyMedQA {
  static let symptoms = [
    "fever", "cough", "rash", "headache", "nausea", "fatigue", "chills", "dizziness",
    "wheezing", "itching", "cramps", "sweating", "swelling", "thirst", "tremor", "numbness",
    "vomiting", "bleeding", "insomnia", "jaundice", "sneezing", "backache", "hiccups", "fainting",
  ]
  /// Each disease and the indices of its symptoms: every symptom belongs to two diseases,
  /// and no two diseases share more than one (a symptom is an edge between two diseases).
  static let diseases: [(name: String, symptoms: [Int])] = [
    ("measles", [4, 5, 12, 16, 17, 20]),
    ("influenza", [0, 7, 8, 13, 19, 23]),
    ("migraine", [0, 3, 9, 11, 16, 18]),
    ("asthma", [1, 4, 6, 21, 22, 23]),
    ("typhoid", [1, 2, 11, 13, 14, 17]),
    ("anemia", [8, 9, 10, 12, 15, 21]),
    ("malaria", [3, 7, 14, 15, 20, 22]),
    ("diabetes", [2, 5, 6, 10, 18, 19]),
  ]
  static let patients = [
    "a man", "a woman", "an old man", "an old woman", "a boy", "a girl", "a young man",
    "a young woman", "a child", "a farmer", "a nurse", "a runner",
  ]
  static let questions = ["diagnosis ?", "what is it ?", "which disease ?"]

  /// The combinations of three symptoms that point to exactly one disease, with it.
  static let combinations: [(symptoms: [Int], disease: Int)] = diseases.indices.flatMap {
    disease in
    let own = diseases[disease].symptoms
    return own.indices.flatMap { a in
      (a + 1..<own.count).flatMap { b in
        (b + 1..<own.count).map { c in [own[a], own[b], own[c]] }
      }
    }.filter { chosen in
      diseases.indices.allSatisfy { other in
        other == disease || !chosen.allSatisfy(diseases[other].symptoms.contains)
      }
    }.map { ($0, disease) }
  }

  /// One example of `split`.
  static func example(_ split: Split, _ random: inout SeededGenerator) -> Example {
    func pick<T>(_ items: [T]) -> T { items[random.nextInt(below: items.count)] }
    let eligible = combinations.indices.filter {
      isHeldOut(combinations[$0].symptoms, oneIn: 5) == (split != .train)
    }
    let (chosen, disease) = combinations[pick(eligible)]
    let named = random.shuffled(chosen).map { symptoms[$0] }
    return Example(
      prompt:
        "\(pick(patients)) has \(named[0]) , \(named[1]) and \(named[2]) . \(pick(questions))",
      answer: diseases[disease].name)
  }
}
