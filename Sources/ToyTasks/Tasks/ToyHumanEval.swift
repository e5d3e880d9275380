import Random

/// toy-humaneval, mirroring HumanEval: what does a tiny straight-line program print?
///
/// A program binds a list of two to five digits to a name, calls one builtin on it, and
/// prints the result:
///
///     x = [ 3 , 7 , 2 ] ; y = max ( x ) ; print y  →  7
///
/// The builtins are `max`, `min`, `len` and indexing the first element (`x [ 0 ]`); the
/// model must read the call, find the list, and compute the builtin over it, the way an
/// interpreter would. The dev and test splits hold only lists (digits in order) that the
/// training split never holds, with any builtin.
enum ToyHumanEval {
  static let names = ["a", "b", "c", "x", "y", "z", "n", "m", "s", "t"]
  static let builtins = ["max", "min", "len", "first"]

  /// One example of `split`.
  static func example(_ split: Split, _ random: inout SeededGenerator) -> Example {
    func pick<T>(_ items: [T]) -> T { items[random.nextInt(below: items.count)] }
    while true {
      let digits = (0..<(2 + random.nextInt(below: 4))).map { _ in random.nextInt(below: 10) }
      guard isHeldOut(digits, oneIn: 5) == (split != .train) else { continue }
      let list = pick(names)
      let result = pick(names.filter { $0 != list })
      let builtin = pick(builtins)
      let call: String
      let value: Int
      switch builtin {
      case "max": (call, value) = ("max ( \(list) )", digits.max()!)
      case "min": (call, value) = ("min ( \(list) )", digits.min()!)
      case "len": (call, value) = ("len ( \(list) )", digits.count)
      default: (call, value) = ("\(list) [ 0 ]", digits[0])
      }
      let listed = digits.map(String.init).joined(separator: " , ")
      return Example(
        prompt: "\(list) = [ \(listed) ] ; \(result) = \(call) ; print \(result)",
        answer: "\(value)")
    }
  }
}
