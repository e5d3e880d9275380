import Random

/// toy-sst2, mirroring SST-2: is a one-sentence movie review positive or negative?
///
/// The label is decided by composition, not by counting words:
/// - negation flips an adjective: "the plot is not dull" is positive;
/// - intensifiers change nothing: "truly awful" is as negative as "awful";
/// - "too" turns a neutral word negative: "far too long";
/// - in "A but B" and "although A , B", the second clause decides, and the first one
///   says the opposite.
enum ToySST2 {
  static let subjects = [
    "the movie", "the film", "this film", "the plot", "the acting", "the script", "the ending",
    "the story", "the cast", "the music", "the dialogue", "the director", "the camera work",
    "the pacing", "the sequel", "the humor",
  ]
  static let verbs = ["is", "was", "feels", "seems"]
  static let positive = [
    "good", "great", "fun", "charming", "moving", "clever", "beautiful", "gripping", "funny",
    "brilliant", "delightful", "fresh", "smart", "warm", "stunning",
  ]
  static let negative = [
    "bad", "dull", "boring", "awful", "bland", "clumsy", "tedious", "weak", "messy",
    "forgettable", "flat", "silly", "lifeless", "stale", "painful",
  ]
  /// Words with no sentiment of their own, negative after "too".
  static let neutral = [
    "long", "loud", "short", "quiet", "dark", "simple", "busy", "sweet", "slow",
  ]
  static let intensifiers = [
    "very", "really", "truly", "quite", "extremely", "so", "incredibly", "rather",
  ]
  static let negators = ["not", "never", "hardly"]
  static let toos = ["too", "far too", "way too", "much too"]
  static let nouns = ["film", "movie", "ride", "story", "watch"]

  /// One example with a balanced label (positive or negative with equal chance).
  static func example(_ random: inout SeededGenerator) -> Example {
    let isPositive = random.nextInt(below: 2) == 0
    let sentence: String
    switch random.nextInt(below: 20) {
    case 0..<8: sentence = clause(isPositive, &random)
    case 8..<14: sentence = clause(!isPositive, &random) + " but " + clause(isPositive, &random)
    case 14..<17: sentence = clause(isPositive, &random) + " and " + clause(isPositive, &random)
    default:
      sentence = "although " + clause(!isPositive, &random) + " , " + clause(isPositive, &random)
    }
    return Example(prompt: sentence, answer: isPositive ? "positive" : "negative")
  }

  /// A clause whose sentiment is `isPositive`.
  static func clause(_ isPositive: Bool, _ random: inout SeededGenerator) -> String {
    func pick(_ words: [String]) -> String { words[random.nextInt(below: words.count)] }
    func intensified(_ word: String) -> String {
      random.nextInt(below: 3) == 0 ? pick(intensifiers) + " " + word : word
    }
    func adjective(_ positive: Bool) -> String {
      pick(positive ? ToySST2.positive : ToySST2.negative)
    }
    let subject = pick(subjects)
    let verb = pick(verbs)
    switch random.nextInt(below: isPositive ? 8 : 10) {
    case 0..<3:
      return "\(subject) \(verb) \(intensified(adjective(isPositive)))"
    case 3..<6:
      return "\(subject) \(verb) \(pick(negators)) \(intensified(adjective(!isPositive)))"
    case 6:
      return "a \(intensified(adjective(isPositive))) \(pick(nouns))"
    case 7:
      return "not a \(intensified(adjective(!isPositive))) \(pick(nouns))"
    default:
      return "\(subject) \(verb) \(pick(toos)) \(pick(neutral))"
    }
  }
}
