import Autodiff
import Foundation
import NN
import SafeTensors

/// A PEFT LoRA adapter as stored on disk: `adapter_config.json` beside
/// `adapter_model.safetensors`, whose keys look like
/// `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`.
public struct LoRAAdapterFile {
  /// One adapted layer's weights: A `[rank, inputs]`, B `[outputs, rank]`, and its scale.
  public struct Site {
    /// `lora_A.weight`.
    public var down: Tensor
    /// `lora_B.weight`.
    public var up: Tensor
    /// α / r (or α / √r with rsLoRA), from the config and any rank or alpha pattern.
    public var scale: Double
    /// The rank r.
    public var rank: Int { down.shape[0] }
  }

  /// The adapted layers, by path in the model (`model.layers.0.self_attn.q_proj`).
  public var sites: [String: Site]
  /// `adapter_config.json` as read or to be written.
  public var config: JSON

  /// The prefix PEFT puts before a model's parameter names.
  public static let keyPrefix = "base_model.model."

  /// The adapter attached to `model`'s layers, ready to save. `baseModel` is recorded as
  /// `base_model_name_or_path`.
  public init(
    adapters: [(path: String, adapter: LoRA)], alpha: Double, rsLoRA: Bool = false,
    baseModel: String
  ) {
    sites = Dictionary(
      uniqueKeysWithValues: adapters.map { path, lora in
        (path, Site(down: lora.down.weight, up: lora.up.weight, scale: lora.scale))
      })
    let rank = adapters.first?.adapter.rank ?? 0
    let targets = Set(adapters.map { String($0.path.split(separator: ".").last!) }).sorted()
    config = .object([
      ("peft_type", .string("LORA")), ("task_type", .string("CAUSAL_LM")), ("r", .integer(rank)),
      ("lora_alpha", .double(alpha)), ("target_modules", .array(targets.map(JSON.string))),
      ("lora_dropout", .double(0)), ("bias", .string("none")), ("fan_in_fan_out", .bool(false)),
      ("use_rslora", .bool(rsLoRA)), ("use_dora", .bool(false)), ("init_lora_weights", .bool(true)),
      ("rank_pattern", .object([])), ("alpha_pattern", .object([])), ("modules_to_save", .null),
      ("layers_to_transform", .null), ("inference_mode", .bool(true)),
      ("base_model_name_or_path", .string(baseModel)),
    ])
  }

  /// Writes the two files into `directory` (created if needed), each atomically.
  public func save(to directory: URL) throws {
    var file = SafeTensorsFile(metadata: ["format": "pt"])
    for (path, site) in sites {
      for (part, tensor) in [("lora_A", site.down), ("lora_B", site.up)] {
        file.tensors["\(Self.keyPrefix)\(path).\(part).weight"] =
          tensor.dtype == .float32
          ? SafeTensor(shape: tensor.shape, floats: tensor.floats)
          : SafeTensor(shape: tensor.shape, doubles: tensor.doubles)
      }
    }
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    try writeAtomically(
      Data((config.prettyText() + "\n").utf8),
      to: directory.appendingPathComponent("adapter_config.json"))
    try file.write(to: directory.appendingPathComponent("adapter_model.safetensors"))
  }

  /// Reads an adapter directory. Keys are matched with or without PEFT's
  /// `base_model.model.` prefix; a key that is not a `lora_A` or `lora_B` weight, or a layer
  /// with only one of the two, is an error that names it.
  public static func load(from directory: URL, dtype: DType = .float32) throws -> LoRAAdapterFile {
    let configURL = directory.appendingPathComponent("adapter_config.json")
    guard let configData = try? Data(contentsOf: configURL) else {
      throw ModelFileError(
        configURL.path, "cannot read (is \(directory.path) a PEFT adapter directory?)")
    }
    let config: JSON
    do { config = try JSON.parse(configData) } catch {
      throw ModelFileError(configURL.path, "invalid JSON: \(error)")
    }
    if let type = config["peft_type"]?.string, type != "LORA" {
      throw ModelFileError(
        configURL.path, "peft_type \(type) is not supported; tinymixer reads LoRA adapters")
    }
    if config["use_dora"]?.bool == true {
      throw ModelFileError(configURL.path, "DoRA adapters (use_dora: true) are not supported")
    }
    guard let rank = config["r"]?.integer, rank > 0, let alpha = config["lora_alpha"]?.double else {
      throw ModelFileError(
        configURL.path, "needs r (a positive whole number) and lora_alpha (a number)")
    }
    let rsLoRA = config["use_rslora"]?.bool ?? false
    let weightsURL = directory.appendingPathComponent("adapter_model.safetensors")
    let file: SafeTensorsFile
    do { file = try SafeTensorsFile.read(from: weightsURL) } catch {
      throw ModelFileError(weightsURL.path, "\(error)")
    }

    var parts: [String: [String: Tensor]] = [:]
    for (key, stored) in file.tensors {
      let name = key.hasPrefix(keyPrefix) ? String(key.dropFirst(keyPrefix.count)) : key
      let pieces = name.split(separator: ".")
      guard pieces.count >= 3, pieces.last == "weight",
        ["lora_A", "lora_B"].contains(pieces[pieces.count - 2])
      else {
        throw ModelFileError(weightsURL.path, "key '\(key)' is not a lora_A or lora_B weight")
      }
      let path = pieces.dropLast(2).joined(separator: ".")
      guard let values = stored.doubles, stored.shape.count == 2 else {
        throw ModelFileError(
          weightsURL.path, "key '\(key)' is not a matrix of floating-point numbers")
      }
      parts[path, default: [:]][String(pieces[pieces.count - 2])] = Tensor(
        shape: stored.shape, scalars: values, dtype: dtype)
    }
    var sites: [String: Site] = [:]
    for (path, pair) in parts {
      guard let down = pair["lora_A"], let up = pair["lora_B"] else {
        throw ModelFileError(
          weightsURL.path,
          "layer '\(path)' has only \(pair.keys.first!), not both lora_A and lora_B")
      }
      guard down.shape[0] == up.shape[1] else {
        throw ModelFileError(
          weightsURL.path,
          "layer '\(path)': lora_A \(down.shape) and lora_B \(up.shape) disagree on the rank")
      }
      sites[path] = Site(
        down: down, up: up, scale: LoRA.scale(rank: down.shape[0], alpha: alpha, rsLoRA: rsLoRA))
    }
    if config["rank_pattern"]?.object?.isEmpty ?? true {
      for (path, site) in sites where site.rank != rank {
        throw ModelFileError(
          weightsURL.path,
          "layer '\(path)' has rank \(site.rank) but r is \(rank) and there is no rank_pattern")
      }
    }
    var adapter = LoRAAdapterFile(adapters: [], alpha: alpha, rsLoRA: rsLoRA, baseModel: "")
    adapter.sites = sites
    adapter.config = config
    return adapter
  }

  /// Attaches the adapter's layers to `model` (frozen), checking every path and shape.
  @discardableResult
  public func attach(to model: Module) throws -> [(path: String, adapter: LoRA)] {
    model.setTrainable(false)
    let layers = Dictionary(
      uniqueKeysWithValues: model.namedModules().compactMap { path, module in
        (module as? Linear).map { (path, $0) }
      })
    var attached: [(String, LoRA)] = []
    for path in sites.keys.sorted() {
      let site = sites[path]!
      guard let linear = layers[path] else {
        throw ModelFileError(path, "the model has no layer at this path")
      }
      guard site.down.shape[1] == linear.inputs, site.up.shape[0] == linear.outputs else {
        throw ModelFileError(
          path,
          "adapter shapes \(site.down.shape), \(site.up.shape) do not fit a Linear \(linear.inputs) → \(linear.outputs)"
        )
      }
      let lora = LoRA(
        down: Linear(weight: site.down), up: Linear(weight: site.up), scale: site.scale)
      linear.adapter = lora
      attached.append((path, lora))
    }
    return attached
  }
}
