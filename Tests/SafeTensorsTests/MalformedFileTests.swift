import Foundation
import Testing

@testable import SafeTensors

/// A file with a hand-written header followed by `data`.
func file(header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> Data {
  let headerBytes = Array(header.utf8)
  var result = Data()
  withUnsafeBytes(of: (declaredLength ?? UInt64(headerBytes.count)).littleEndian) {
    result.append(contentsOf: $0)
  }
  return result + Data(headerBytes) + Data(data)
}

func refusal(_ data: Data) -> SafeTensorsError? {
  do {
    _ = try SafeTensorsFile.parse(data)
    return nil
  } catch let error as SafeTensorsError { return error } catch { return nil }
}

@Test func everyTruncationOfAValidFileIsRefused() {
  let valid = SafeTensorsFile(
    tensors: [
      "a": SafeTensor(shape: [2, 2], floats: [1, 2, 3, 4]),
      "b": SafeTensor(shape: [3], doubles: [5, 6, 7]),
    ],
    metadata: ["k": "v"]
  ).serialized()
  for length in 0..<valid.count {
    #expect(refusal(valid.prefix(length)) != nil, "truncated to \(length) bytes")
  }
  #expect(refusal(valid) == nil)
}

@Test(arguments: [
  (
    file(header: "{}", declaredLength: 200_000_000),
    SafeTensorsError.headerTooLarge(length: 200_000_000)
  ),
  (file(header: "{}", declaredLength: 64), .headerPastEnd(length: 64, fileSize: 10)),
  (Data([1, 2, 3]), .fileTooSmall(bytes: 3)),
  (file(header: "[1,2]"), .headerNotAnObject),
  (file(header: "{\"a\": "), .invalidJSON(reason: "unexpected end of text at byte 6")),
  (
    file(
      header:
        #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
      data: Array(repeating: 0, count: 8)),
    .duplicateName(name: "a")
  ),
  (
    file(header: #"{"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
    .unknownDType(name: "a", dtype: "F33")
  ),
  (
    file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
    .sizeMismatch(name: "a", expected: 8, found: 4)
  ),
  (
    file(
      header:
        #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}"#,
      data: Array(repeating: 0, count: 6)),
    .overlappingOffsets(name: "b", start: 2, previousEnd: 4)
  ),
  (
    file(
      header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
      data: Array(repeating: 0, count: 8)),
    .gapBeforeTensor(name: "a", start: 4, previousEnd: 0)
  ),
  (
    file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0]),
    .offsetsPastEnd(name: "a", end: 4, dataSize: 2)
  ),
  (
    file(
      header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
      data: Array(repeating: 0, count: 6)),
    .trailingData(dataEnd: 4, dataSize: 6)
  ),
  (
    file(header: #"{"a":{"dtype":"U8","shape":[4611686018427387904,4],"data_offsets":[0,0]}}"#),
    .shapeOverflow(name: "a")
  ),
  (file(header: #"{"__metadata__":{"k":1}}"#), .metadataNotStrings(key: "k")),
  (
    file(header: #"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
    .badEntry(name: "a", reason: "shape must be non-negative integers")
  ),
  (
    file(
      header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}"#, data: [0, 0, 0, 0]),
    .badEntry(name: "a", reason: "must hold exactly dtype, shape and data_offsets")
  ),
])
func eachViolationHasItsOwnError(data: Data, expected: SafeTensorsError) {
  #expect(refusal(data) == expected)
}

@Test func headerMustBeUTF8() {
  var data = file(header: "{\"\u{00E9}\":1}")
  data[10] = 0xFF
  #expect(refusal(data) == .headerNotUTF8)
}

@Test func jsonReaderIsStrict() throws {
  #expect(throws: JSONError.self) { try JSON.parse(#"{"a":1,"a":2}"#) }
  #expect(throws: JSONError.self) { try JSON.parse("[1,]") }
  #expect(throws: JSONError.self) { try JSON.parse("01") }
  #expect(throws: JSONError.self) {
    try JSON.parse(String(repeating: "[", count: 200) + String(repeating: "]", count: 200))
  }
  #expect(throws: JSONError.self) { try JSON.parse("\"\\ud800\"") }
  #expect(try JSON.parse(#" {"x": [1, -2.5e3, true, null, "\u00e9\n"]} "#)["x"]!.array!.count == 5)
  #expect(try JSON.parse("9223372036854775807").integer == Int.max)
}

@Test func aHeaderListingMoreTensorsThanTheLimitIsRefused() {
  let limit = SafeTensorsFile.maximumTensorCount
  let empty = #"{"dtype":"F32","shape":[0],"data_offsets":[0,0]}"#
  let entries = (0...limit).map { "\"t\($0)\":\(empty)" }
  #expect(
    refusal(file(header: "{" + entries.joined(separator: ",") + "}"))
      == .tooManyTensors(count: limit + 1))
  #expect(refusal(file(header: "{" + entries.dropLast().joined(separator: ",") + "}")) == nil)
}
