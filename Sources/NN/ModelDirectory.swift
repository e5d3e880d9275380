import Autodiff
import Foundation
import SafeTensors

/// Why a model directory or its files were refused, naming the file and what is wrong.
public struct ModelFileError: Error, CustomStringConvertible, Equatable {
  /// The file or folder.
  public let path: String
  /// What is wrong.
  public let message: String

  /// An error about `path`.
  public init(_ path: String, _ message: String) {
    self.path = path
    self.message = message
  }

  public var description: String { "\(path): \(message)" }
}

/// Reads the JSON file `url` of the folder `directory`: a file that cannot be read asks
/// whether `directory` is a `kind` ("a model directory"), and invalid JSON names the file.
public func readJSON(_ url: URL, in directory: URL, kind: String) throws -> JSON {
  guard let data = try? Data(contentsOf: url) else {
    throw ModelFileError(url.path, "cannot read (is \(directory.path) \(kind)?)")
  }
  do { return try JSON.parse(data) } catch {
    throw ModelFileError(url.path, "invalid JSON: \(error)")
  }
}

/// Reads the safetensors file `url`, its errors naming the file.
public func readSafeTensors(_ url: URL) throws -> SafeTensorsFile {
  do { return try SafeTensorsFile.read(from: url) } catch {
    throw ModelFileError(url.path, "\(error)")
  }
}

extension SafeTensor {
  /// `tensor`'s elements, stored as F32 or F64 like its dtype.
  public init(_ tensor: Tensor) {
    switch tensor.storage {
    case .float32(let values): self.init(shape: tensor.shape, floats: values)
    case .float64(let values): self.init(shape: tensor.shape, doubles: values)
    }
  }
}

extension Tensor {
  /// A `dtype` tensor with a stored tensor's shape and elements (F16, BF16, F32 or F64,
  /// converted), or nil when the stored type is not floating point.
  public convenience init?(_ stored: SafeTensor, dtype: DType) {
    switch dtype {
    case .float32:
      guard let values = stored.floats else { return nil }
      self.init(shape: stored.shape, storage: .float32(values))
    case .float64:
      guard let values = stored.doubles else { return nil }
      self.init(shape: stored.shape, storage: .float64(values))
    }
  }
}

extension LlamaConfiguration {
  /// The fields of a Hugging Face `config.json` for `LlamaForCausalLM`.
  public func configJSON(tokenIds: [String: Int] = [:]) -> JSON {
    var pairs: [(String, JSON)] = [
      ("architectures", .array([.string("LlamaForCausalLM")])), ("model_type", .string("llama")),
      ("vocab_size", .integer(vocabularySize)), ("hidden_size", .integer(hiddenSize)),
      ("intermediate_size", .integer(intermediateSize)), ("num_hidden_layers", .integer(layers)),
      ("num_attention_heads", .integer(heads)), ("num_key_value_heads", .integer(keyValueHeads)),
      ("head_dim", .integer(headSize)), ("max_position_embeddings", .integer(contextLength)),
      ("rms_norm_eps", .double(rmsNormEpsilon)), ("rope_theta", .double(ropeTheta)),
      ("tie_word_embeddings", .bool(tieWordEmbeddings)),
      ("initializer_range", .double(initializerRange)),
      ("hidden_act", .string("silu")), ("attention_bias", .bool(false)), ("mlp_bias", .bool(false)),
      ("torch_dtype", .string("float32")),
    ]
    pairs += tokenIds.keys.sorted().map { ($0, .integer(tokenIds[$0]!)) }
    return .object(pairs)
  }

  /// A configuration from a `config.json`; unknown fields are ignored, Llama's defaults
  /// fill optional ones, and a missing or malformed required field is named.
  public init(configJSON json: JSON, path: String) throws {
    let fields = try ConfigFields(json, path: path, modelType: "llama")
    // Fields that would change what the model computes, refused rather than ignored.
    if let activation = json["hidden_act"], activation.string != "silu" {
      throw ModelFileError(
        path, "hidden_act is \(activation.compactText); tinymixer's Llama computes silu only")
    }
    if let scaling = json["rope_scaling"], scaling != .null {
      throw ModelFileError(
        path, "rope_scaling is set; tinymixer's rotary embedding is unscaled (null only)")
    }
    for key in ["attention_bias", "mlp_bias"] where json[key]?.bool == true {
      throw ModelFileError(path, "\(key) is true; tinymixer's Llama projections have no bias")
    }
    let heads = try fields.integer("num_attention_heads")
    self.init(
      vocabularySize: try fields.integer("vocab_size"),
      hiddenSize: try fields.integer("hidden_size"),
      layers: try fields.integer("num_hidden_layers"), heads: heads,
      keyValueHeads: try fields.integer("num_key_value_heads", default: heads),
      intermediateSize: try fields.integer("intermediate_size"),
      contextLength: try fields.integer("max_position_embeddings", default: 2048),
      rmsNormEpsilon: try fields.number("rms_norm_eps", default: 1e-6),
      ropeTheta: try fields.number("rope_theta", default: 10_000),
      tieWordEmbeddings: json["tie_word_embeddings"]?.bool ?? false,
      initializerRange: try fields.number("initializer_range", default: 0.02))
    // The sizes first: head_dim is compared with hidden_size / num_attention_heads, which
    // needs a positive head count.
    if let problem { throw ModelFileError(path, problem) }
    if let headSize = json["head_dim"]?.integer, headSize != self.headSize {
      throw ModelFileError(
        path,
        "head_dim \(headSize) differs from hidden_size / num_attention_heads = \(self.headSize)")
    }
  }
}

extension LlamaForCausalLM {
  /// Writes `config.json` and `model.safetensors` into `directory` (created if needed),
  /// each atomically. `tokenIds` adds fields such as `bos_token_id`; `metadata` goes into
  /// the safetensors header.
  public func save(
    to directory: URL, tokenIds: [String: Int] = [:], metadata: [String: String] = [:]
  ) throws {
    try writeModelDirectory(
      to: directory, config: configuration.configJSON(tokenIds: tokenIds), metadata: metadata)
  }

  /// Reads a model directory written by `save` or by Hugging Face's `save_pretrained` for
  /// the same architecture. Every parameter must be present with its shape; a tensor the
  /// model has no place for is an error too (apart from `lm_head.weight` when tied and the
  /// rotary embedding's `inv_freq`, which the model computes itself).
  public static func load(from directory: URL, dtype: DType = .float32) throws -> LlamaForCausalLM {
    let files = try ModelDirectoryFiles(directory)
    let model = LlamaForCausalLM(
      try LlamaConfiguration(configJSON: files.config, path: files.configPath), dtype: dtype)
    try model.loadParameters(from: files.weights, path: files.weightsPath)
    return model
  }

  /// Sets every parameter from the tensor of the same name in `file`.
  func loadParameters(from file: SafeTensorsFile, path: String) throws {
    try loadParameters(from: file, path: path) { name in
      name.hasSuffix("rotary_emb.inv_freq") || (name == "lm_head.weight" && self.lmHead == nil)
    }
  }
}

extension MambaForCausalLM {
  /// Writes `config.json` and `model.safetensors` into `directory`, as `LlamaForCausalLM`
  /// does, for Hugging Face's `MambaForCausalLM`.
  public func save(
    to directory: URL, tokenIds: [String: Int] = [:], metadata: [String: String] = [:]
  ) throws {
    try writeModelDirectory(
      to: directory, config: configuration.configJSON(tokenIds: tokenIds), metadata: metadata)
  }

  /// Reads a model directory written by `save` or by Hugging Face's `save_pretrained` for
  /// `MambaForCausalLM`; every parameter must be there, and nothing else (apart from
  /// `lm_head.weight` when tied).
  public static func load(from directory: URL, dtype: DType = .float32) throws -> MambaForCausalLM {
    let files = try ModelDirectoryFiles(directory)
    let model = MambaForCausalLM(
      try MambaConfiguration(configJSON: files.config, path: files.configPath), dtype: dtype)
    try model.loadParameters(from: files.weights, path: files.weightsPath) { name in
      name == "lm_head.weight" && model.lmHead == nil
    }
    return model
  }
}

/// A model directory's two files, read: `config.json` and `model.safetensors`.
struct ModelDirectoryFiles {
  let config: JSON
  let configPath: String
  let weights: SafeTensorsFile
  let weightsPath: String

  init(_ directory: URL) throws {
    let configURL = directory.appendingPathComponent("config.json")
    config = try readJSON(configURL, in: directory, kind: "a model directory")
    configPath = configURL.path
    let weightsURL = directory.appendingPathComponent("model.safetensors")
    weights = try readSafeTensors(weightsURL)
    weightsPath = weightsURL.path
  }
}

/// The fields of a `config.json` of one `model_type`, read with the file named in every
/// error: a missing required field, a malformed one.
struct ConfigFields {
  let json: JSON
  let path: String

  /// The fields of `json`, which must be an object whose `model_type`, if any, is `modelType`.
  init(_ json: JSON, path: String, modelType: String) throws {
    guard json.object != nil else { throw ModelFileError(path, "not a JSON object") }
    if let type = json["model_type"], type.string != modelType {
      throw ModelFileError(path, "model_type is \(type.compactText), not \"\(modelType)\"")
    }
    (self.json, self.path) = (json, path)
  }

  /// The whole number `key`, or `value` when it is absent (an error when neither is).
  func integer(_ key: String, default value: Int? = nil) throws -> Int {
    guard let field = json[key] else {
      guard let value else { throw ModelFileError(path, "missing \(key)") }
      return value
    }
    guard let number = field.integer, number >= 0 else {
      throw ModelFileError(path, "\(key) is not a whole number")
    }
    return number
  }

  /// The number `key`, or `value` when it is absent.
  func number(_ key: String, default value: Double) throws -> Double {
    guard let field = json[key] else { return value }
    guard let number = field.double else { throw ModelFileError(path, "\(key) is not a number") }
    return number
  }
}

extension Module {
  /// Writes `config` as `config.json` and every parameter, by its path, into
  /// `model.safetensors`, each atomically, into `directory` (created if needed).
  func writeModelDirectory(to directory: URL, config: JSON, metadata: [String: String]) throws {
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    var file = SafeTensorsFile(metadata: metadata.merging(["format": "pt"]) { a, _ in a })
    for (name, tensor) in namedParameters() { file.tensors[name] = SafeTensor(tensor) }
    try writeAtomically(
      Data((config.prettyText() + "\n").utf8), to: directory.appendingPathComponent("config.json"))
    try file.write(to: directory.appendingPathComponent("model.safetensors"))
  }

  /// Sets every parameter from the tensor of the same name in `file`: each must be there,
  /// with its shape and finite values, and no other tensor may be, unless `ignorable`.
  func loadParameters(
    from file: SafeTensorsFile, path: String, ignorable: (String) -> Bool
  ) throws {
    let expected = namedParameters()
    let missing = expected.map(\.name).filter { file.tensors[$0] == nil }
    if !missing.isEmpty {
      throw ModelFileError(path, "missing tensors: \(missing.joined(separator: ", "))")
    }
    let known = Set(expected.map(\.name))
    let unplaced = file.tensors.keys.filter { !known.contains($0) && !ignorable($0) }.sorted()
    if !unplaced.isEmpty {
      throw ModelFileError(
        path, "tensors with no place in this model: \(unplaced.joined(separator: ", "))")
    }
    for (name, parameter) in expected {
      let tensor = file.tensors[name]!
      guard tensor.shape == parameter.shape else {
        throw ModelFileError(
          path, "tensor '\(name)' has shape \(tensor.shape), the model needs \(parameter.shape)")
      }
      guard let values = Tensor(tensor, dtype: parameter.dtype) else {
        throw ModelFileError(
          path, "\(SafeTensorsError.unsupportedDType(name: name, dtype: tensor.dtype))")
      }
      guard values.isFinite else {
        throw ModelFileError(path, "tensor '\(name)' holds a NaN or an infinity")
      }
      parameter.assign(values.storage)
    }
  }
}
