import Random

/// toy-gsm8k, mirroring GSM8K: a two-step word problem with small numbers.
///
/// Someone has a number of things, gets or loses some, then gets or loses some more; the
/// answer is how many they have at the end, a number from 0 to 11:
///
///     mia has 3 apples . she finds 4 more . she gives away 2 . how many apples now ?  →  5
///
/// The model must add and subtract, in order, numbers it reads in the sentence. The test
/// and dev splits ask only number combinations (start, first change, second change) that
/// the training split never holds, so a model that memorised problems cannot answer them.
enum ToyGSM8K {
  static let people = [
    ("mia", "she"), ("tom", "he"), ("ana", "she"), ("ben", "he"), ("zoe", "she"), ("sam", "he"),
    ("eva", "she"), ("leo", "he"),
  ]
  static let things = ["apples", "books", "coins", "cards", "shells", "pens", "stamps", "eggs"]
  static let gains = ["finds", "buys", "gets", "wins"]
  static let losses = ["gives away", "loses", "sells", "uses"]
  /// The numbers a problem starts with, and the sizes of its changes.
  static let starts = 2...5, changes = 1...3

  /// One example of `split`.
  static func example(_ split: Split, _ random: inout SeededGenerator) -> Example {
    func pick<T>(_ items: [T]) -> T { items[random.nextInt(below: items.count)] }
    while true {
      let start = starts.lowerBound + random.nextInt(below: starts.count)
      let first =
        (random.nextInt(below: 2) == 0 ? 1 : -1)
        * (changes.lowerBound + random.nextInt(below: changes.count))
      let second =
        (random.nextInt(below: 2) == 0 ? 1 : -1)
        * (changes.lowerBound + random.nextInt(below: changes.count))
      guard start + first >= 0, start + first + second >= 0,
        isHeldOut([start, first, second], oneIn: 6) == (split != .train)
      else { continue }
      let (name, pronoun) = pick(people)
      let thing = pick(things)
      func change(_ amount: Int) -> String {
        amount > 0 ? "\(pick(gains)) \(amount) more" : "\(pick(losses)) \(-amount)"
      }
      let prompt =
        "\(name) has \(start) \(thing) . \(pronoun) \(change(first)) . \(pronoun) \(change(second)) . how many \(thing) now ?"
      return Example(prompt: prompt, answer: "\(start + first + second)")
    }
  }
}
