import Random

/// toy-cola, mirroring CoLA: is a sentence grammatical?
///
/// Sentences come from a small grammar: a subject noun phrase, a verb phrase that agrees
/// with it, and sometimes an object and a place. Half are broken by exactly one error of
/// one of four kinds, each of which needs more than one word to see:
/// - agreement: the verb's number differs from the subject's, often with an adjective or a
///   relative clause in between ("the tall dogs near the gate runs");
/// - auxiliary: the wrong verb form after an auxiliary ("the cat will sleeps", "the cat has
///   ate");
/// - order: two neighbouring words of the subject swapped ("dog the runs");
/// - determiner: a plural noun after "a", or two determiners in a row.
enum ToyCoLA {
  /// Nouns as (singular, plural).
  static let nouns = [
    ("dog", "dogs"), ("cat", "cats"), ("bird", "birds"), ("child", "children"),
    ("teacher", "teachers"), ("farmer", "farmers"), ("girl", "girls"), ("boy", "boys"),
  ]
  /// Verbs as (plural present, singular present, past, after "will", after "has").
  static let verbs = [
    ("run", "runs", "ran", "run", "run"), ("sleep", "sleeps", "slept", "sleep", "slept"),
    ("sing", "sings", "sang", "sing", "sung"), ("eat", "eats", "ate", "eat", "eaten"),
    ("write", "writes", "wrote", "write", "written"), ("go", "goes", "went", "go", "gone"),
  ]
  static let adjectives = ["tall", "brave", "small", "happy", "quiet", "young", "clever", "tired"]
  static let places = [
    "near the gate", "in the garden", "by the river", "at the school", "on the hill",
  ]
  static let adverbs = ["quickly", "often", "today", "again", "slowly"]

  /// One example with a balanced label.
  static func example(_ random: inout SeededGenerator) -> Example {
    func pick<T>(_ items: [T]) -> T { items[random.nextInt(below: items.count)] }
    let plural = random.nextInt(below: 2) == 0
    let noun = pick(nouns)
    let verb = pick(verbs)
    let determiner =
      plural ? pick(["the", "some", "many", "these"]) : pick(["the", "a", "this", "every"])
    let adjective = random.nextInt(below: 2) == 0 ? [pick(adjectives)] : []
    var subject = [determiner] + adjective + [plural ? noun.1 : noun.0]
    let place = random.nextInt(below: 3) == 0 ? [pick(places)] : []
    let tense = random.nextInt(below: 4)  // 0, 1: present; 2: past; 3: auxiliary
    let perfect = random.nextInt(below: 3) == 0
    let auxiliary = perfect ? (plural ? "have" : "has") : pick(["will", "can"])
    var verbPhrase: [String]
    switch tense {
    case 0, 1: verbPhrase = [plural ? verb.0 : verb.1]
    case 2: verbPhrase = [verb.2]
    default: verbPhrase = [auxiliary, perfect ? verb.4 : verb.3]
    }
    let adverb = random.nextInt(below: 3) == 0 ? [pick(adverbs)] : []

    let acceptable = random.nextInt(below: 2) == 0
    if !acceptable {
      var broken = false
      while !broken {
        // Agreement, the error that needs two words' features combined, is drawn most.
        switch [0, 0, 0, 1, 2, 3][random.nextInt(below: 6)] {
        case 0 where tense < 2:  // agreement
          verbPhrase = [plural ? verb.1 : verb.0]
          broken = true
        case 1 where tense == 3:  // the verb form after the auxiliary
          let wrong = [verb.1, verb.2, perfect ? verb.3 : verb.4].filter { $0 != verbPhrase[1] }
          verbPhrase[1] = pick(wrong)
          broken = true
        case 2:  // word order inside the subject
          let swap = random.nextInt(below: subject.count - 1)
          subject.swapAt(swap, swap + 1)
          broken = true
        case 3:  // determiners
          if plural {
            subject[subject.firstIndex(of: determiner)!] = pick(["a", "every", "this"])
          } else {
            subject.insert(pick(["the", "a"]), at: 0)
          }
          broken = true
        default: continue
        }
      }
    }
    let words = subject + place + verbPhrase + adverb
    return Example(
      prompt: words.joined(separator: " "), answer: acceptable ? "acceptable" : "unacceptable")
  }
}
