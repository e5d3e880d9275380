import Foundation

/// A JSON value, read strictly: objects keep their keys in order and may not repeat one,
/// numbers keep their text (so integers up to 2⁶³ stay exact), and nesting is bounded.
///
/// Foundation's `JSONSerialization` silently keeps the last of two equal keys; the files
/// tinymixer reads must reject that, so it parses JSON itself.
public indirect enum JSON: Equatable, Sendable {
  case null
  case bool(Bool)
  /// A number, as written.
  case number(String)
  case string(String)
  case array([JSON])
  /// Key-value pairs in file order, keys distinct.
  case object([(String, JSON)])

  public static func == (a: JSON, b: JSON) -> Bool {
    switch (a, b) {
    case (.null, .null): true
    case (.bool(let x), .bool(let y)): x == y
    case (.number(let x), .number(let y)): x == y
    case (.string(let x), .string(let y)): x == y
    case (.array(let x), .array(let y)): x == y
    case (.object(let x), .object(let y)): x.map(\.0) == y.map(\.0) && x.map(\.1) == y.map(\.1)
    default: false
    }
  }

  /// The value of `key` in an object.
  public subscript(_ key: String) -> JSON? {
    guard case .object(let pairs) = self else { return nil }
    return pairs.first { $0.0 == key }?.1
  }

  /// The string, if this is a string.
  public var string: String? {
    if case .string(let value) = self { return value }
    return nil
  }

  /// The integer, if this is a number written as an integer that fits in `Int`.
  public var integer: Int? {
    if case .number(let text) = self { return Int(text) }
    return nil
  }

  /// The number, if this is a finite number.
  public var double: Double? {
    if case .number(let text) = self, let value = Double(text), value.isFinite { return value }
    return nil
  }

  /// The Boolean, if this is `true` or `false`.
  public var bool: Bool? {
    if case .bool(let value) = self { return value }
    return nil
  }

  /// The elements, if this is an array.
  public var array: [JSON]? {
    if case .array(let values) = self { return values }
    return nil
  }

  /// The pairs, if this is an object.
  public var object: [(String, JSON)]? {
    if case .object(let pairs) = self { return pairs }
    return nil
  }
}

/// Why a text is not the JSON expected.
public struct JSONError: Error, CustomStringConvertible, Equatable {
  /// What is wrong.
  public let message: String
  /// The byte offset where it was found.
  public let offset: Int

  public var description: String { "\(message) at byte \(offset)" }
}

extension JSON {
  /// The deepest nesting of arrays and objects accepted.
  public static let maximumDepth = 128

  /// Parses `bytes`, which must be exactly one JSON value (with optional white space).
  public static func parse(_ bytes: some Collection<UInt8>) throws -> JSON {
    var parser = JSONParser(bytes: Array(bytes))
    parser.skipSpace()
    let value = try parser.value(depth: 0)
    parser.skipSpace()
    guard parser.index == parser.bytes.count else {
      throw parser.error("text after the JSON value")
    }
    return value
  }

  /// Parses a UTF-8 string.
  public static func parse(_ text: String) throws -> JSON { try parse(Array(text.utf8)) }

  /// Compact JSON text (no spaces), keys in order, strings escaped as serde_json does.
  public var compactText: String {
    switch self {
    case .null: return "null"
    case .bool(let value): return value ? "true" : "false"
    case .number(let text): return text
    case .string(let value): return JSON.quoted(value)
    case .array(let values): return "[" + values.map(\.compactText).joined(separator: ",") + "]"
    case .object(let pairs):
      return "{" + pairs.map { JSON.quoted($0.0) + ":" + $0.1.compactText }.joined(separator: ",")
        + "}"
    }
  }

  /// Indented JSON text, two spaces per level, for files people read (config.json).
  public func prettyText(indent: String = "") -> String {
    let inner = indent + "  "
    switch self {
    case .array(let values) where !values.isEmpty:
      return "[\n" + values.map { inner + $0.prettyText(indent: inner) }.joined(separator: ",\n")
        + "\n\(indent)]"
    case .object(let pairs) where !pairs.isEmpty:
      return "{\n"
        + pairs.map { inner + JSON.quoted($0.0) + ": " + $0.1.prettyText(indent: inner) }.joined(
          separator: ",\n")
        + "\n\(indent)}"
    default: return compactText
    }
  }

  static func quoted(_ string: String) -> String {
    var result = "\""
    for scalar in string.unicodeScalars {
      switch scalar {
      case "\"": result += "\\\""
      case "\\": result += "\\\\"
      case "\n": result += "\\n"
      case "\r": result += "\\r"
      case "\t": result += "\\t"
      case "\u{08}": result += "\\b"
      case "\u{0C}": result += "\\f"
      case _ where scalar.value < 0x20: result += String(format: "\\u%04x", scalar.value)
      default: result.unicodeScalars.append(scalar)
      }
    }
    return result + "\""
  }

  /// A number value for an integer.
  public static func integer(_ value: Int) -> JSON { .number(String(value)) }

  /// A number value for a double, written so that it reads back exactly.
  public static func double(_ value: Double) -> JSON {
    value == value.rounded() && abs(value) < 1e15
      ? .number(String(format: "%.1f", value)) : .number("\(value)")
  }
}

private struct JSONParser {
  let bytes: [UInt8]
  var index = 0

  func error(_ message: String) -> JSONError { JSONError(message: message, offset: index) }

  mutating func skipSpace() {
    while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
  }

  mutating func value(depth: Int) throws -> JSON {
    guard depth < JSON.maximumDepth else { throw error("nesting deeper than \(JSON.maximumDepth)") }
    guard index < bytes.count else { throw error("unexpected end of text") }
    switch bytes[index] {
    case UInt8(ascii: "{"): return try object(depth: depth)
    case UInt8(ascii: "["): return try array(depth: depth)
    case UInt8(ascii: "\""): return .string(try string())
    case UInt8(ascii: "t"):
      try literal("true")
      return .bool(true)
    case UInt8(ascii: "f"):
      try literal("false")
      return .bool(false)
    case UInt8(ascii: "n"):
      try literal("null")
      return .null
    case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
    default: throw error("unexpected character '\(Character(UnicodeScalar(bytes[index])))'")
    }
  }

  mutating func literal(_ word: String) throws {
    let expected = Array(word.utf8)
    guard index + expected.count <= bytes.count,
      Array(bytes[index..<index + expected.count]) == expected
    else {
      throw error("invalid literal")
    }
    index += expected.count
  }

  mutating func object(depth: Int) throws -> JSON {
    index += 1
    var pairs: [(String, JSON)] = []
    var keys = Set<String>()
    skipSpace()
    if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
      index += 1
      return .object(pairs)
    }
    while true {
      skipSpace()
      guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
        throw error("expected a string key")
      }
      let keyStart = index
      let key = try string()
      guard keys.insert(key).inserted else {
        throw JSONError(message: "duplicate key \"\(key)\"", offset: keyStart)
      }
      skipSpace()
      guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
        throw error("expected ':'")
      }
      index += 1
      skipSpace()
      pairs.append((key, try value(depth: depth + 1)))
      skipSpace()
      guard index < bytes.count else { throw error("unexpected end of text in an object") }
      if bytes[index] == UInt8(ascii: ",") {
        index += 1
        continue
      }
      guard bytes[index] == UInt8(ascii: "}") else { throw error("expected ',' or '}'") }
      index += 1
      return .object(pairs)
    }
  }

  mutating func array(depth: Int) throws -> JSON {
    index += 1
    var values: [JSON] = []
    skipSpace()
    if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
      index += 1
      return .array(values)
    }
    while true {
      skipSpace()
      values.append(try value(depth: depth + 1))
      skipSpace()
      guard index < bytes.count else { throw error("unexpected end of text in an array") }
      if bytes[index] == UInt8(ascii: ",") {
        index += 1
        continue
      }
      guard bytes[index] == UInt8(ascii: "]") else { throw error("expected ',' or ']'") }
      index += 1
      return .array(values)
    }
  }

  mutating func number() throws -> String {
    let start = index
    if bytes[index] == UInt8(ascii: "-") { index += 1 }
    func digits() -> Int {
      let first = index
      while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) {
        index += 1
      }
      return index - first
    }
    let integerDigits = digits()
    guard integerDigits > 0 else { throw error("invalid number") }
    if integerDigits > 1 && bytes[index - integerDigits] == UInt8(ascii: "0") {
      throw error("number with a leading zero")
    }
    if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
      index += 1
      guard digits() > 0 else { throw error("invalid number") }
    }
    if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
      index += 1
      if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")
      {
        index += 1
      }
      guard digits() > 0 else { throw error("invalid number") }
    }
    return String(decoding: bytes[start..<index], as: UTF8.self)
  }

  mutating func string() throws -> String {
    index += 1
    var result: [UInt8] = []
    while true {
      guard index < bytes.count else { throw error("unterminated string") }
      let byte = bytes[index]
      index += 1
      switch byte {
      case UInt8(ascii: "\""):
        guard let text = String(validating: result, as: UTF8.self) else {
          throw error("string is not valid UTF-8")
        }
        return text
      case UInt8(ascii: "\\"):
        guard index < bytes.count else { throw error("unterminated escape") }
        let escape = bytes[index]
        index += 1
        switch escape {
        case UInt8(ascii: "\""): result.append(0x22)
        case UInt8(ascii: "\\"): result.append(0x5C)
        case UInt8(ascii: "/"): result.append(0x2F)
        case UInt8(ascii: "b"): result.append(0x08)
        case UInt8(ascii: "f"): result.append(0x0C)
        case UInt8(ascii: "n"): result.append(0x0A)
        case UInt8(ascii: "r"): result.append(0x0D)
        case UInt8(ascii: "t"): result.append(0x09)
        case UInt8(ascii: "u"):
          var scalar = try hexQuad()
          if (0xD800..<0xDC00).contains(scalar) {
            guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"),
              bytes[index + 1] == UInt8(ascii: "u")
            else {
              throw error("unpaired surrogate")
            }
            index += 2
            let low = try hexQuad()
            guard (0xDC00..<0xE000).contains(low) else { throw error("unpaired surrogate") }
            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
          }
          guard let unicode = UnicodeScalar(scalar) else { throw error("invalid \\u escape") }
          result += Array(String(unicode).utf8)
        default: throw error("invalid escape")
        }
      case 0..<0x20: throw error("control character in a string")
      default: result.append(byte)
      }
    }
  }

  mutating func hexQuad() throws -> UInt32 {
    guard index + 4 <= bytes.count,
      let value = UInt32(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16)
    else { throw error("invalid \\u escape") }
    index += 4
    return value
  }
}
