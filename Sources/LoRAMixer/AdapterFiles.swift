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
    /// A, `lora_A.weight`.
    public var a: Tensor
    /// B, `lora_B.weight`.
    public var b: Tensor
    /// α / r (or α / √r with rsLoRA), from the config and any rank or alpha pattern.
    public var scale: Double
    /// The rank r.
    public var rank: Int { a.shape[0] }
  }

  /// The adapted layers, by path in the model (`model.layers.0.self_attn.q_proj`).
  public var sites: [String: Site]
  /// `adapter_config.json` as read or to be written.
  public var config: JSON
  /// Keys of the weights file that are not a layer's `lora_A` or `lora_B` weight (PEFT's
  /// `lora_embedding_A`, `modules_to_save` copies, biases, ...): read, not used, and reported.
  public var unplacedKeys: [String] = []
  /// The config file it was read from, for messages (`adapter_config.json` when made here).
  public var configPath = "adapter_config.json"

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
        (path, Site(a: lora.a.weight, b: lora.b.weight, scale: lora.scale))
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

  /// Writes the two files as the folder `directory`, as a whole (`replaceFolder`): a
  /// failure leaves the previous adapter there, never its config beside new weights.
  public func save(to directory: URL) throws {
    var file = SafeTensorsFile(metadata: ["format": "pt"])
    for (path, site) in sites {
      for (part, tensor) in [("lora_A", site.a), ("lora_B", site.b)] {
        file.tensors["\(Self.keyPrefix)\(path).\(part).weight"] = SafeTensor(tensor)
      }
    }
    try replaceFolder(directory) { folder in
      try writeAtomically(
        Data((config.prettyText() + "\n").utf8),
        to: folder.appendingPathComponent("adapter_config.json"))
      try file.write(to: folder.appendingPathComponent("adapter_model.safetensors"))
    }
  }

  /// Reads an adapter directory. Keys are matched with or without PEFT's
  /// `base_model.model.` prefix; each layer's rank and alpha come from `r` and `lora_alpha`
  /// unless `rank_pattern` or `alpha_pattern` names it. A key that is not a `lora_A` or
  /// `lora_B` weight is kept in `unplacedKeys`; a layer with only one of the two, or a rank
  /// other than the config's, is an error that names it.
  public static func load(from directory: URL, dtype: DType = .float32) throws -> LoRAAdapterFile {
    let configURL = directory.appendingPathComponent("adapter_config.json")
    let config = try readJSON(configURL, in: directory, kind: "a PEFT adapter directory")
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
    let (parts, unplaced) = try factors(
      of: try readSafeTensors(weightsURL), in: weightsURL, dtype: dtype)
    let rankPattern = config["rank_pattern"]?.object ?? []
    let alphaPattern = config["alpha_pattern"]?.object ?? []
    var sites: [String: Site] = [:]
    for (path, pair) in parts {
      sites[path] = try site(
        path, pair, weightsPath: weightsURL.path, configPath: configURL.path,
        rank: { try patternValue(rankPattern, for: path, in: configURL.path)?.integer ?? rank },
        alpha: { try patternValue(alphaPattern, for: path, in: configURL.path)?.double ?? alpha },
        rsLoRA: rsLoRA)
    }
    var adapter = LoRAAdapterFile(adapters: [], alpha: alpha, rsLoRA: rsLoRA, baseModel: "")
    adapter.sites = sites
    adapter.config = config
    adapter.unplacedKeys = unplaced.sorted()
    adapter.configPath = configURL.path
    return adapter
  }

  /// The `lora_A` and `lora_B` matrices of `file` by layer path (finite floating-point
  /// matrices, or an error naming the key), and the keys that are neither.
  private static func factors(of file: SafeTensorsFile, in weightsURL: URL, dtype: DType) throws
    -> (parts: [String: [String: Tensor]], unplaced: [String])
  {
    var parts: [String: [String: Tensor]] = [:]
    var unplaced: [String] = []
    for (key, stored) in file.tensors {
      let name = key.hasPrefix(keyPrefix) ? String(key.dropFirst(keyPrefix.count)) : key
      let pieces = name.split(separator: ".")
      guard pieces.count >= 3, pieces.last == "weight",
        ["lora_A", "lora_B"].contains(pieces[pieces.count - 2])
      else {
        unplaced.append(key)
        continue
      }
      let path = pieces.dropLast(2).joined(separator: ".")
      guard let matrix = Tensor(stored, dtype: dtype), stored.shape.count == 2 else {
        throw ModelFileError(
          weightsURL.path, "key '\(key)' is not a matrix of floating-point numbers")
      }
      guard matrix.isFinite else {
        throw ModelFileError(weightsURL.path, "key '\(key)' holds a NaN or an infinity")
      }
      parts[path, default: [:]][String(pieces[pieces.count - 2])] = matrix
    }
    guard !parts.isEmpty else {
      throw ModelFileError(
        weightsURL.path, "no lora_A or lora_B weights among its \(file.tensors.count) keys")
    }
    return (parts, unplaced)
  }

  /// One layer's adapter from its factors: both present, agreeing on the rank, that rank the
  /// config's (`rank`, read only once the factors are checked), and a scale from `alpha`
  /// whose update cannot overflow.
  private static func site(
    _ path: String, _ pair: [String: Tensor], weightsPath: String, configPath: String,
    rank siteRank: () throws -> Int, alpha siteAlpha: () throws -> Double, rsLoRA: Bool
  ) throws -> Site {
    guard let a = pair["lora_A"], let b = pair["lora_B"] else {
      throw ModelFileError(
        weightsPath, "layer '\(path)' has only \(pair.keys.first!), not both lora_A and lora_B")
    }
    guard a.shape[0] == b.shape[1] else {
      throw ModelFileError(
        weightsPath,
        "layer '\(path)': lora_A \(a.shape) and lora_B \(b.shape) disagree on the rank")
    }
    let rank = try siteRank()
    guard a.shape[0] == rank else {
      throw ModelFileError(
        weightsPath,
        "layer '\(path)' has rank \(a.shape[0]) but the config gives it rank \(rank) (r or rank_pattern)"
      )
    }
    let alpha = try siteAlpha()
    let scale = LoRA.scale(rank: rank, alpha: alpha, rsLoRA: rsLoRA)
    // A bound on |s · B A x| per unit of input: past the square root of Float's largest
    // value, the next RMSNorm's square overflows and the loss is NaN.
    let bound =
      abs(scale) * (a.scalars.map(abs).max() ?? 0) * (b.scalars.map(abs).max() ?? 0)
      * Double(rank) * Double(a.shape[1])
    guard bound.isFinite, bound < Double(Float.greatestFiniteMagnitude).squareRoot() else {
      throw ModelFileError(
        configPath,
        "lora_alpha \(alpha) gives layer '\(path)' a scale of \(scale), which makes its update overflow"
      )
    }
    return Site(a: a, b: b, scale: scale)
  }

  /// The value a PEFT `rank_pattern` or `alpha_pattern` gives `path`, as PEFT reads them
  /// (`get_pattern_key` in `peft/utils/other.py`): the first key, in the file's order, that
  /// as a regular expression matches the whole path or a dot-separated ending of it,
  /// `re.match(rf"(.*\.)?({key})$", path)`. So `q_proj` matches every q_proj,
  /// `layers\.[02]\.self_attn\.q_proj` those of layers 0 and 2, and `layers.1.mlp.up_proj`
  /// (dots unescaped, matching any character) layer 1's.
  static func patternValue(_ pattern: [(String, JSON)], for path: String, in file: String) throws
    -> JSON?
  {
    for (key, value) in pattern {
      guard let expression = try? Regex("(.*\\.)?(\(key))") else {
        throw ModelFileError(
          file,
          "rank_pattern or alpha_pattern key '\(key)' is not a regular expression")
      }
      if (try? expression.wholeMatch(in: path)) != nil { return value }
    }
    return nil
  }

  /// Whether `path` is `name` or ends with `.name`.
  static func matches(_ path: String, _ name: String) -> Bool {
    path == name || path.hasSuffix("." + name)
  }

  /// The layers of `model` that `target_modules` selects: a list of names (each the whole
  /// path or its last components), a regular expression matched against the whole path,
  /// or `all-linear` (every Linear but the output head); then, as PEFT does, only the layers
  /// of the decoder blocks `layers_to_transform` lists (a number or a list), the block
  /// number read after `layers_pattern` (default `layers`) in the path.
  public func targetedLayers(in model: Module) throws -> [String] {
    let layers = try targetedByName(in: model)
    guard let transform = config["layers_to_transform"], transform != .null else { return layers }
    let blocks = transform.integer.map { [$0] } ?? transform.array?.compactMap(\.integer) ?? []
    let names: [String] =
      config["layers_pattern"]?.string.map { [$0] }
      ?? config["layers_pattern"]?.array?.compactMap(\.string) ?? ["layers"]
    return layers.filter { path in
      let parts = path.split(separator: ".").map(String.init)
      return zip(parts, parts.dropFirst()).contains { name, number in
        names.contains(name) && Int(number).map(blocks.contains) == true
      }
    }
  }

  /// The layers `target_modules` selects by name.
  func targetedByName(in model: Module) throws -> [String] {
    let linears = model.namedModules().filter { $0.module is Linear }.map(\.path)
    switch config["target_modules"] {
    case .some(.array(let names)):
      let wanted = names.compactMap(\.string)
      return linears.filter { path in wanted.contains { Self.matches(path, $0) } }
    case .some(.string("all-linear")):
      return linears.filter { $0 != "lm_head" }
    case .some(.string(let pattern)):
      guard let expression = try? Regex(pattern) else {
        throw ModelFileError(
          configPath, "target_modules '\(pattern)' is not a regular expression")
      }
      return linears.filter { (try? expression.wholeMatch(in: $0)) != nil }
    default:
      return []
    }
  }

  /// What reading this adapter onto `model` leaves out, never silently: keys that are not
  /// LoRA weights, layers `target_modules` selects that have no weights in the file, and
  /// weights of layers it does not select (PEFT does not apply them either).
  public func omissions(on model: Module) throws -> [String] {
    let targeted = Set(try targetedLayers(in: model))
    let missing = targeted.subtracting(sites.keys).sorted()
    let untargeted =
      config["target_modules"] == nil ? [] : Set(sites.keys).subtracting(targeted).sorted()
    return unplacedKeys.map { "key '\($0)' is not a lora_A or lora_B weight; not used" }
      + missing.map {
        "layer '\($0)' is targeted by target_modules but has no weights; left as the base"
      }
      + untargeted.map {
        "layer '\($0)' has weights but target_modules and layers_to_transform leave it out; not used"
      }
  }

  /// Attaches the adapter's layers to `model` (frozen), checking every path and shape: the
  /// layers `target_modules` and `layers_to_transform` select, as PEFT applies them (all of
  /// them when the config names no target). Selecting no layer of the model is an error,
  /// as in PEFT ("Target modules … not found in the base model").
  @discardableResult
  public func attach(to model: Module) throws -> [(path: String, adapter: LoRA)] {
    var selected: Set<String>? = nil
    if let targets = config["target_modules"], targets != .null {
      selected = Set(try targetedLayers(in: model))
      guard !selected!.isEmpty else {
        throw ModelFileError(
          configPath,
          "target_modules \(targets.compactText) selects no layer of the model (with layers_to_transform, if given)"
        )
      }
    }
    model.setTrainable(false)
    let layers = Dictionary(
      uniqueKeysWithValues: model.namedModules().compactMap { path, module in
        (module as? Linear).map { (path, $0) }
      })
    var attached: [(String, LoRA)] = []
    for path in sites.keys.sorted() where selected?.contains(path) ?? true {
      let site = sites[path]!
      guard let linear = layers[path] else {
        throw ModelFileError(path, "the model has no layer at this path")
      }
      guard site.a.shape[1] == linear.inputs, site.b.shape[0] == linear.outputs else {
        throw ModelFileError(
          path,
          "adapter shapes \(site.a.shape), \(site.b.shape) do not fit a Linear \(linear.inputs) → \(linear.outputs)"
        )
      }
      let lora = LoRA(
        a: Linear(weight: site.a), b: Linear(weight: site.b), scale: site.scale)
      linear.adapter = lora
      attached.append((path, lora))
    }
    return attached
  }
}
