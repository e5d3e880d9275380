import Foundation
import SafeTensors

/// Lesson 09: a safetensors file's tensor names and their byte ranges, read from its
/// header by hand. Checked against the `SafeTensors` reader on a file it writes.
public func checkSafeTensorsHeader(
  _ read: (_ file: Data) -> [(name: String, start: Int, end: Int)]
) -> ExerciseResult {
  var result = ExerciseResult("reading a safetensors header by hand (lesson 09)")
  let file = SafeTensorsFile(
    tensors: [
      "model.norm.weight": SafeTensor(shape: [3], floats: [1, 2, 3]),
      "lm_head.weight": SafeTensor(shape: [2, 2], doubles: [1, 2, 3, 4]),
      "step": SafeTensor(shape: [], int64s: [7]),
    ], metadata: ["format": "pt"])
  let data = file.serialized()
  let yours = read(data).sorted { $0.name < $1.name }
  result.expect(
    yours.map(\.name) == file.tensors.keys.sorted(),
    "names: yours \(yours.map(\.name)), the file's \(file.tensors.keys.sorted())")
  // Where the data starts: after the 8-byte length and the header.
  let headerLength = data.prefix(8).enumerated().reduce(0) {
    $0 | Int($1.element) << (8 * $1.offset)
  }
  for entry in yours {
    guard let tensor = file.tensors[entry.name], entry.start >= 0, entry.end >= entry.start,
      8 + headerLength + entry.end <= data.count
    else {
      result.expect(
        false,
        "\(entry.name): no such tensor, or bytes \(entry.start)..<\(entry.end) outside the file")
      continue
    }
    let bytes = data.subdata(in: (8 + headerLength + entry.start)..<(8 + headerLength + entry.end))
    result.expect(
      bytes == tensor.bytes, "\(entry.name): bytes \(entry.start)..<\(entry.end) are its data")
  }
  return result
}
