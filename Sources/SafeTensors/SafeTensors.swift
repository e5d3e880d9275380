import Foundation

/// The element types of the safetensors format, in the reference implementation's order
/// of increasing alignment (the writer sorts by it).
public enum SafeTensorsDType: String, CaseIterable, Sendable, Comparable {
  case bool = "BOOL"
  case u8 = "U8"
  case i8 = "I8"
  case f8E5M2 = "F8_E5M2"
  case f8E4M3 = "F8_E4M3"
  case i16 = "I16"
  case u16 = "U16"
  case f16 = "F16"
  case bf16 = "BF16"
  case i32 = "I32"
  case u32 = "U32"
  case f32 = "F32"
  case f64 = "F64"
  case i64 = "I64"
  case u64 = "U64"

  /// Bytes per element.
  public var size: Int {
    switch self {
    case .bool, .u8, .i8, .f8E5M2, .f8E4M3: 1
    case .i16, .u16, .f16, .bf16: 2
    case .i32, .u32, .f32: 4
    case .f64, .i64, .u64: 8
    }
  }

  public static func < (a: Self, b: Self) -> Bool {
    allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
  }
}

/// One tensor of a safetensors file: its element type, shape and little-endian bytes.
public struct SafeTensor: Equatable, Sendable {
  /// The element type.
  public var dtype: SafeTensorsDType
  /// Axis lengths, outermost first.
  public var shape: [Int]
  /// The elements, little-endian, row-major.
  public var bytes: Data

  /// A tensor from raw bytes.
  public init(dtype: SafeTensorsDType, shape: [Int], bytes: Data) {
    self.dtype = dtype
    self.shape = shape
    self.bytes = bytes
  }

  /// A Float32 tensor.
  public init(shape: [Int], floats: [Float]) {
    precondition(shape.reduce(1, *) == floats.count, "shape \(shape) for \(floats.count) values")
    self.init(dtype: .f32, shape: shape, bytes: floats.withUnsafeBytes { Data($0) })
  }

  /// A Float64 tensor.
  public init(shape: [Int], doubles: [Double]) {
    precondition(shape.reduce(1, *) == doubles.count, "shape \(shape) for \(doubles.count) values")
    self.init(dtype: .f64, shape: shape, bytes: doubles.withUnsafeBytes { Data($0) })
  }

  /// A 64-bit integer tensor (token ids, as PyTorch stores them).
  public init(shape: [Int], int64s: [Int64]) {
    precondition(shape.reduce(1, *) == int64s.count, "shape \(shape) for \(int64s.count) values")
    self.init(
      dtype: .i64, shape: shape, bytes: int64s.map(\.littleEndian).withUnsafeBytes { Data($0) })
  }

  /// The elements of an I64 tensor, or nil for other types.
  public var int64s: [Int64]? {
    dtype == .i64 ? values(UInt64.self).map { Int64(bitPattern: $0) } : nil
  }

  /// The elements as Float (F16, BF16 and F64 are converted), or nil for other types.
  public var floats: [Float]? {
    switch dtype {
    case .f32: return values(UInt32.self).map { Float(bitPattern: $0) }
    case .f64: return values(UInt64.self).map { Float(Double(bitPattern: $0)) }
    case .bf16: return values(UInt16.self).map { Float(bitPattern: UInt32($0) << 16) }
    case .f16: return values(UInt16.self).map(Self.halfToFloat)
    default: return nil
    }
  }

  /// The elements as Double (F16, BF16 and F32 are converted exactly), or nil for other types.
  public var doubles: [Double]? {
    if dtype == .f64 { return values(UInt64.self).map { Double(bitPattern: $0) } }
    return floats?.map(Double.init)
  }

  /// The little-endian elements of width `T`, in the host's byte order.
  private func values<T: FixedWidthInteger>(_ type: T.Type) -> [T] {
    var result = [T](repeating: 0, count: bytes.count / MemoryLayout<T>.size)
    _ = result.withUnsafeMutableBytes { bytes.copyBytes(to: $0) }
    return result.map { T(littleEndian: $0) }
  }

  /// An IEEE half-precision number as Float, computed from its bits (any platform).
  static func halfToFloat(_ bits: UInt16) -> Float {
    let sign: Float = bits & 0x8000 != 0 ? -1 : 1
    let exponent = Int((bits >> 10) & 0x1F)
    let fraction = Float(bits & 0x3FF)
    switch exponent {
    case 0: return sign * fraction * 0x1p-24  // subnormal
    case 31: return fraction == 0 ? sign * .infinity : .nan
    default:
      return sign * (1 + fraction / 1024)
        * Float(sign: .plus, exponent: exponent - 15, significand: 1)
    }
  }
}

/// A safetensors file: tensors by name and optional string metadata.
///
/// The format: an 8-byte little-endian header length N; N bytes of JSON mapping each name
/// to `{"dtype", "shape", "data_offsets": [start, end]}` (offsets into the data that
/// follows) plus an optional `"__metadata__"` object of strings; then the data,
/// contiguous, little-endian. Reading validates as strictly as the reference reader; each
/// violation is its own `SafeTensorsError`.
public struct SafeTensorsFile: Equatable, Sendable {
  /// The tensors, by name.
  public var tensors: [String: SafeTensor]
  /// The `__metadata__` strings.
  public var metadata: [String: String]

  /// The largest header accepted, as in the reference implementation.
  public static let maximumHeaderLength = 100_000_000

  /// The most tensors one file may hold (a Llama of 80 layers has under 1,000).
  public static let maximumTensorCount = 100_000

  /// A file of `tensors` and `metadata`.
  public init(tensors: [String: SafeTensor] = [:], metadata: [String: String] = [:]) {
    self.tensors = tensors
    self.metadata = metadata
  }

  /// The tensor called `name`, or an error naming it.
  public func tensor(_ name: String) throws -> SafeTensor {
    guard let tensor = tensors[name] else { throw SafeTensorsError.missingTensor(name: name) }
    return tensor
  }

  // MARK: Writing

  /// The file's bytes, laid out as the reference writer does: tensors sorted by element
  /// alignment (largest first), then by name; `__metadata__` first in the header; the
  /// header padded with spaces to a multiple of 8 so the data is aligned.
  public func serialized() -> Data {
    let order = tensors.keys.sorted { a, b in
      let (x, y) = (tensors[a]!.dtype, tensors[b]!.dtype)
      return x != y ? x > y : a < b
    }
    var pairs: [(String, JSON)] = []
    if !metadata.isEmpty {
      pairs.append(
        ("__metadata__", .object(metadata.keys.sorted().map { ($0, .string(metadata[$0]!)) })))
    }
    var offset = 0
    for name in order {
      let tensor = tensors[name]!
      pairs.append(
        (
          name,
          .object([
            ("dtype", .string(tensor.dtype.rawValue)),
            ("shape", .array(tensor.shape.map(JSON.integer))),
            ("data_offsets", .array([.integer(offset), .integer(offset + tensor.bytes.count)])),
          ])
        ))
      offset += tensor.bytes.count
    }
    var header = Array(JSON.object(pairs).compactText.utf8)
    header += [UInt8](repeating: 0x20, count: (8 - header.count % 8) % 8)
    var data = Data(capacity: 8 + header.count + offset)
    withUnsafeBytes(of: UInt64(header.count).littleEndian) { data.append(contentsOf: $0) }
    data.append(contentsOf: header)
    for name in order { data.append(tensors[name]!.bytes) }
    return data
  }

  /// Writes the file atomically (a temporary file renamed into place).
  public func write(to url: URL) throws { try writeAtomically(serialized(), to: url) }

  // MARK: Reading

  /// Reads the file at `url`, validating it.
  public static func read(from url: URL) throws -> SafeTensorsFile {
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
      throw SafeTensorsError.unreadable(path: url.path, reason: error.localizedDescription)
    }
    return try parse(data)
  }

  /// Parses and validates a whole file's bytes: the header, each entry, then the data.
  public static func parse(_ data: Data) throws -> SafeTensorsFile {
    let bytes = [UInt8](data)
    let (pairs, headerEnd) = try header(bytes)
    var file = SafeTensorsFile()
    var entries: [Entry] = []
    for (name, value) in pairs {
      if name == "__metadata__" {
        file.metadata = try metadata(value)
      } else {
        entries.append(try entry(name, value))
      }
    }
    file.tensors = try tensors(entries, data: bytes[headerEnd...])
    return file
  }

  /// One tensor's line of the header, validated on its own.
  private struct Entry {
    let name: String, dtype: SafeTensorsDType, shape: [Int], start: Int, end: Int
  }

  /// The header's name-value pairs, and where the data begins: the 8-byte length, the
  /// bounds, UTF-8, a JSON object without duplicate names, and the tensor count.
  private static func header(_ bytes: [UInt8]) throws -> (pairs: [(String, JSON)], end: Int) {
    guard bytes.count >= 8 else { throw SafeTensorsError.fileTooSmall(bytes: bytes.count) }
    let length = bytes[0..<8].enumerated().reduce(UInt64(0)) {
      $0 | UInt64($1.element) << (8 * UInt64($1.offset))
    }
    guard length <= UInt64(maximumHeaderLength) else {
      throw SafeTensorsError.headerTooLarge(length: length)
    }
    let headerEnd = 8 + Int(length)
    guard headerEnd <= bytes.count else {
      throw SafeTensorsError.headerPastEnd(length: Int(length), fileSize: bytes.count)
    }
    let headerBytes = bytes[8..<headerEnd]
    guard String(validating: headerBytes, as: UTF8.self) != nil else {
      throw SafeTensorsError.headerNotUTF8
    }
    guard headerBytes.first == UInt8(ascii: "{") else { throw SafeTensorsError.headerNotAnObject }
    let header: JSON
    do { header = try JSON.parse(headerBytes) } catch let error as JSONError {
      if error.message.hasPrefix("duplicate key") {
        throw SafeTensorsError.duplicateName(name: String(error.message.dropFirst(15).dropLast()))
      }
      throw SafeTensorsError.invalidJSON(reason: error.description)
    }
    guard let pairs = header.object else { throw SafeTensorsError.headerNotAnObject }
    let tensorCount = pairs.filter { $0.0 != "__metadata__" }.count
    guard tensorCount <= SafeTensorsFile.maximumTensorCount else {
      throw SafeTensorsError.tooManyTensors(count: tensorCount)
    }
    return (pairs, headerEnd)
  }

  /// `__metadata__`: an object of strings.
  private static func metadata(_ value: JSON) throws -> [String: String] {
    guard let pairs = value.object else { throw SafeTensorsError.metadataNotStrings(key: nil) }
    var metadata: [String: String] = [:]
    for (key, item) in pairs {
      guard let string = item.string else { throw SafeTensorsError.metadataNotStrings(key: key) }
      metadata[key] = string
    }
    return metadata
  }

  /// A tensor's entry: exactly dtype, shape and data_offsets, each of its kind.
  private static func entry(_ name: String, _ value: JSON) throws -> Entry {
    guard let info = value.object, Set(info.map(\.0)) == ["dtype", "shape", "data_offsets"] else {
      throw SafeTensorsError.badEntry(
        name: name, reason: "must hold exactly dtype, shape and data_offsets")
    }
    guard let dtypeName = value["dtype"]?.string else {
      throw SafeTensorsError.badEntry(name: name, reason: "dtype is not a string")
    }
    guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
      throw SafeTensorsError.unknownDType(name: name, dtype: dtypeName)
    }
    guard let shapeValues = value["shape"]?.array else {
      throw SafeTensorsError.badEntry(name: name, reason: "shape is not an array")
    }
    let shape = shapeValues.compactMap { $0.integer }
    guard shape.count == shapeValues.count, shape.allSatisfy({ $0 >= 0 }) else {
      throw SafeTensorsError.badEntry(name: name, reason: "shape must be non-negative integers")
    }
    guard let offsets = value["data_offsets"]?.array, offsets.count == 2,
      let start = offsets[0].integer, let end = offsets[1].integer, start >= 0, end >= 0
    else {
      throw SafeTensorsError.badEntry(
        name: name, reason: "data_offsets must be two non-negative integers")
    }
    return Entry(name: name, dtype: dtype, shape: shape, start: start, end: end)
  }

  /// The tensors' bytes. The data offsets, in order, must tile `data` from its start to the
  /// end of the file, and each range must hold exactly shape × element size bytes.
  private static func tensors(_ entries: [Entry], data: ArraySlice<UInt8>) throws -> [String:
    SafeTensor]
  {
    let dataSize = data.count
    var tensors: [String: SafeTensor] = [:]
    var expectedStart = 0
    for entry in entries.sorted(by: { ($0.start, $0.end) < ($1.start, $1.end) }) {
      guard entry.start == expectedStart else {
        throw entry.start < expectedStart
          ? SafeTensorsError.overlappingOffsets(
            name: entry.name, start: entry.start, previousEnd: expectedStart)
          : SafeTensorsError.gapBeforeTensor(
            name: entry.name, start: entry.start, previousEnd: expectedStart)
      }
      guard entry.end >= entry.start else {
        throw SafeTensorsError.badEntry(
          name: entry.name, reason: "data_offsets end before they start")
      }
      var elements = 1
      for length in entry.shape {
        let (product, overflow) = elements.multipliedReportingOverflow(by: length)
        guard !overflow else { throw SafeTensorsError.shapeOverflow(name: entry.name) }
        elements = product
      }
      let (size, overflow) = elements.multipliedReportingOverflow(by: entry.dtype.size)
      guard !overflow else { throw SafeTensorsError.shapeOverflow(name: entry.name) }
      guard entry.end - entry.start == size else {
        throw SafeTensorsError.sizeMismatch(
          name: entry.name, expected: size, found: entry.end - entry.start)
      }
      guard entry.end <= dataSize else {
        throw SafeTensorsError.offsetsPastEnd(name: entry.name, end: entry.end, dataSize: dataSize)
      }
      let first = data.startIndex
      tensors[entry.name] = SafeTensor(
        dtype: entry.dtype, shape: entry.shape,
        bytes: Data(data[first + entry.start..<first + entry.end]))
      expectedStart = entry.end
    }
    guard expectedStart == dataSize else {
      throw SafeTensorsError.trailingData(dataEnd: expectedStart, dataSize: dataSize)
    }
    return tensors
  }
}

/// Why a safetensors file was refused. Each case names the rule and, where there is one,
/// the tensor.
public enum SafeTensorsError: Error, Equatable, CustomStringConvertible {
  case unreadable(path: String, reason: String)
  case fileTooSmall(bytes: Int)
  case headerTooLarge(length: UInt64)
  case headerPastEnd(length: Int, fileSize: Int)
  case headerNotUTF8
  case headerNotAnObject
  case invalidJSON(reason: String)
  case duplicateName(name: String)
  case tooManyTensors(count: Int)
  case metadataNotStrings(key: String?)
  case badEntry(name: String, reason: String)
  case unknownDType(name: String, dtype: String)
  case shapeOverflow(name: String)
  case sizeMismatch(name: String, expected: Int, found: Int)
  case overlappingOffsets(name: String, start: Int, previousEnd: Int)
  case gapBeforeTensor(name: String, start: Int, previousEnd: Int)
  case offsetsPastEnd(name: String, end: Int, dataSize: Int)
  case trailingData(dataEnd: Int, dataSize: Int)
  case missingTensor(name: String)
  case unsupportedDType(name: String, dtype: SafeTensorsDType)

  public var description: String {
    switch self {
    case .unreadable(let path, let reason): "cannot read \(path): \(reason)"
    case .fileTooSmall(let bytes): "file of \(bytes) bytes is shorter than the 8-byte header length"
    case .headerTooLarge(let length):
      "header length \(length) exceeds the limit of \(SafeTensorsFile.maximumHeaderLength) bytes"
    case .headerPastEnd(let length, let size):
      "header length \(length) runs past the end of a \(size)-byte file"
    case .headerNotUTF8: "header is not valid UTF-8"
    case .headerNotAnObject: "header is not a JSON object"
    case .invalidJSON(let reason): "header is not valid JSON: \(reason)"
    case .duplicateName(let name): "tensor name '\(name)' appears twice in the header"
    case .tooManyTensors(let count):
      "header lists \(count) tensors, more than the limit of \(SafeTensorsFile.maximumTensorCount)"
    case .metadataNotStrings(let key):
      key.map { "__metadata__ value of '\($0)' is not a string" }
        ?? "__metadata__ is not an object of strings"
    case .badEntry(let name, let reason): "tensor '\(name)': \(reason)"
    case .unknownDType(let name, let dtype): "tensor '\(name)': unknown dtype '\(dtype)'"
    case .shapeOverflow(let name): "tensor '\(name)': shape × element size overflows"
    case .sizeMismatch(let name, let expected, let found):
      "tensor '\(name)': shape and dtype need \(expected) bytes but data_offsets span \(found)"
    case .overlappingOffsets(let name, let start, let end):
      "tensor '\(name)': data starts at \(start), inside the previous tensor (which ends at \(end))"
    case .gapBeforeTensor(let name, let start, let end):
      "tensor '\(name)': data starts at \(start), leaving a gap after the previous tensor's end at \(end)"
    case .offsetsPastEnd(let name, let end, let size):
      "tensor '\(name)': data ends at \(end), past the \(size) data bytes"
    case .trailingData(let end, let size):
      "tensors cover \(end) of the \(size) data bytes; the rest is not accounted for"
    case .missingTensor(let name): "no tensor named '\(name)'"
    case .unsupportedDType(let name, let dtype):
      "tensor '\(name)' has dtype \(dtype.rawValue); tinymixer reads F32, F64, F16 and BF16"
    }
  }
}
