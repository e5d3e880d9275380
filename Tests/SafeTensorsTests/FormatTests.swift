import Foundation
import Testing

@testable import SafeTensors

/// Little-endian bytes of Float32 values.
func bytes(_ values: [Float]) -> [UInt8] {
  values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
}

@Test func writerMatchesTheReferenceImplementationByteForByte() {
  // The vectors of the reference implementation's own tests (safetensors/src/tensor.rs).
  let one = SafeTensorsFile(tensors: [
    "attn.0": SafeTensor(shape: [1, 2, 3], floats: [0, 1, 2, 3, 4, 5])
  ])
  let expected: [UInt8] =
    [64, 0, 0, 0, 0, 0, 0, 0]
    + Array(#"{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}"#.utf8)
    + bytes([0, 1, 2, 3, 4, 5])
  #expect([UInt8](one.serialized()) == expected)
  #expect(
    [UInt8](SafeTensorsFile().serialized()) == [
      8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32,
    ])
  let metadata = SafeTensorsFile(metadata: ["framework": "pt"])
  #expect(
    [UInt8](metadata.serialized())
      == [40, 0, 0, 0, 0, 0, 0, 0] + Array(#"{"__metadata__":{"framework":"pt"}}"#.utf8) + [
        32, 32, 32, 32, 32,
      ])
  let padded = SafeTensorsFile(tensors: [
    "attn0": SafeTensor(shape: [1, 1, 2, 3], floats: [0, 1, 2, 3, 4, 5])
  ])
  #expect(padded.serialized().count == 8 + 72 + 24)
  #expect(padded.serialized()[8 + 65..<8 + 72] == Data(repeating: 32, count: 7))
}

@Test func tensorsAreOrderedByAlignmentThenName() throws {
  let file = SafeTensorsFile(tensors: [
    "b": SafeTensor(shape: [1], floats: [1]), "a": SafeTensor(shape: [1], floats: [2]),
    "z": SafeTensor(shape: [2], doubles: [3, 4]),
  ])
  let header = String(decoding: file.serialized()[8...], as: UTF8.self)
  let z = header.range(of: "\"z\"")!.lowerBound
  let a = header.range(of: "\"a\"")!.lowerBound
  let b = header.range(of: "\"b\"")!.lowerBound
  #expect(z < a && a < b)
}

@Test func roundTripsAreBitExact() throws {
  let floats: [Float] = [
    0, -0.0, 1.5, .infinity, -.infinity, .nan, .leastNonzeroMagnitude, .greatestFiniteMagnitude,
    3.1415927,
  ]
  let doubles: [Double] = [0, -0.0, 2.5e-300, .nan, 1 / 3, -.infinity]
  let file = SafeTensorsFile(
    tensors: [
      "f": SafeTensor(shape: [3, 3], floats: floats), "d": SafeTensor(shape: [6], doubles: doubles),
      "empty": SafeTensor(shape: [0, 4], floats: []),
    ], metadata: ["format": "pt", "note": "quote \" and \\ and é"])
  let read = try SafeTensorsFile.parse(file.serialized())
  #expect(read == file)
  #expect(read.tensors["f"]!.floats!.map(\.bitPattern) == floats.map(\.bitPattern))
  #expect(read.tensors["d"]!.doubles!.map(\.bitPattern) == doubles.map(\.bitPattern))
  #expect(read.serialized() == file.serialized())
}

@Test func halfAndBrainFloatAreConverted() {
  let half = SafeTensor(
    dtype: .f16, shape: [5],
    bytes: Data([0x00, 0x3C, 0x00, 0xC0, 0x00, 0x7C, 0x01, 0x00, 0x55, 0x35]))
  let values = half.floats!
  #expect(values[0] == 1 && values[1] == -2 && values[2] == .infinity)
  #expect(values[3] == 0x1p-24)
  #expect(abs(values[4] - 0.333251953125) < 1e-9)
  let brain = SafeTensor(dtype: .bf16, shape: [2], bytes: Data([0x80, 0x3F, 0x49, 0x40]))
  #expect(brain.floats! == [1, 3.140625])
  #expect(SafeTensor(dtype: .i64, shape: [1], bytes: Data(count: 8)).floats == nil)
}

@Test func writesAreAtomic() throws {
  let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
    "safetensors-\(UUID().uuidString)")
  defer { try? FileManager.default.removeItem(at: folder) }
  let url = folder.appendingPathComponent("weights.safetensors")
  try SafeTensorsFile(tensors: ["x": SafeTensor(shape: [1], floats: [1])]).write(to: url)
  try SafeTensorsFile(tensors: ["x": SafeTensor(shape: [1], floats: [2])]).write(to: url)
  #expect(try SafeTensorsFile.read(from: url).tensors["x"]!.floats == [2])
  #expect(
    try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["weights.safetensors"])
}

@Test func aSaveThatFailsLeavesThePreviousFileIntact() throws {
  let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
    "safetensors-\(UUID().uuidString)")
  defer { try? FileManager.default.removeItem(at: folder) }
  let url = folder.appendingPathComponent("weights.safetensors")
  let original = SafeTensorsFile(tensors: ["x": SafeTensor(shape: [2], floats: [1, 2])])
  try original.write(to: url)
  // Block the temporary file's path with a folder, so the write fails before the rename,
  // as an interrupted save would.
  let blocker = folder.appendingPathComponent(
    ".weights.safetensors.\(ProcessInfo.processInfo.processIdentifier).tmp")
  try FileManager.default.createDirectory(at: blocker, withIntermediateDirectories: false)
  #expect(throws: (any Error).self) {
    try SafeTensorsFile(tensors: ["x": SafeTensor(shape: [2], floats: [3, 4])]).write(to: url)
  }
  #expect(try SafeTensorsFile.read(from: url) == original)
}
