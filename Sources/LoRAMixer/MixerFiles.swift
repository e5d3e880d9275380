import Autodiff
import Foundation
import NN
import SafeTensors

/// A saved mixture, as a folder:
///
///     mixer_config.json     experts and their folders, routed sites, routing settings, base
///     router.safetensors    one [experts, inputs] matrix per site, `<site>.router.weight`
///     experts/<name>/       each expert as a PEFT adapter directory
///
/// The experts stay ordinary PEFT adapters, so each one can be loaded on its own by PEFT or
/// by `tinymixer eval --adapter`.
public enum MixerFiles {
  /// The config's file name.
  public static let configName = "mixer_config.json"
  /// The routers' file name.
  public static let routersName = "router.safetensors"

  /// Writes `mixture` with its `experts` (in the mixture's order) as the folder
  /// `destination`, as a whole (`replaceFolder`: a failure leaves the previous mixer).
  /// `baseModel` is recorded as the base the experts were trained on, and `loss`, if given,
  /// as the routing loss the routers trained with.
  public static func save(
    _ mixture: Mixture, experts: [LoRAAdapterFile], baseModel: String,
    loss: RoutingLossSettings? = nil, to destination: URL
  ) throws {
    precondition(experts.count == mixture.expertNames.count, "one adapter file per expert")
    try replaceFolder(destination) { folder in
      try write(mixture, experts: experts, baseModel: baseModel, loss: loss, into: folder)
    }
  }

  /// The files of `save`, written into `folder`.
  static func write(
    _ mixture: Mixture, experts: [LoRAAdapterFile], baseModel: String,
    loss: RoutingLossSettings?, into folder: URL
  ) throws {
    for (name, expert) in zip(mixture.expertNames, experts) {
      try expert.save(to: folder.appendingPathComponent("experts").appendingPathComponent(name))
    }
    var routers = SafeTensorsFile(metadata: ["format": "pt"])
    for (name, weight) in mixture.routerParameters() {
      routers.tensors[name] = SafeTensor(weight)
    }
    try routers.write(to: folder.appendingPathComponent(routersName))
    let settings = mixture.settings
    let targets = Set(mixture.sites.map { String($0.path.split(separator: ".").last!) }).sorted()
    let config = JSON.object([
      ("format", .string("tinymixer-mixer")), ("version", .integer(1)),
      ("base_model_name_or_path", .string(baseModel)),
      (
        "experts",
        .array(
          mixture.expertNames.map {
            .object([("name", .string($0)), ("path", .string("experts/\($0)"))])
          })
      ),
      ("target_modules", .array(targets.map(JSON.string))),
      ("routing_mode", .string(settings.mode.rawValue)),
      ("router_input", .string(settings.input.rawValue)), ("top_k", .integer(settings.k)),
      ("inference_top_k", .integer(settings.inferenceK)),
      ("temperature", .double(settings.temperature)),
      ("sites", .array(mixture.sites.map { .string($0.path) })),
      (
        "routing_loss",
        loss.map {
          .object([
            ("kind", .string($0.kind.rawValue)), ("entropy", .string($0.entropy.rawValue)),
            ("alpha", .double($0.alpha)), ("balance_per", .string($0.counting.rawValue)),
            ("lambda", .double($0.lambda)),
          ])
        } ?? .null
      ),
    ])
    try writeAtomically(
      Data((config.prettyText() + "\n").utf8), to: folder.appendingPathComponent(configName))
  }

  /// What a mixer folder's config says.
  public struct Config {
    /// The experts' names and folders, in router-row order.
    public var experts: [(name: String, folder: URL)]
    /// The projections routed.
    public var targets: [String]
    /// The routing settings.
    public var routing: RoutingSettings
    /// The base model the experts were trained on, as recorded.
    public var baseModel: String
    /// The routed layers, as recorded (nil in a config without the list).
    public var sites: [String]?
  }

  /// Reads `mixer_config.json` in `folder`.
  public static func readConfig(_ folder: URL) throws -> Config {
    let url = folder.appendingPathComponent(configName)
    let json = try readJSON(url, in: folder, kind: "a mixer folder")
    guard json["format"]?.string == "tinymixer-mixer", json["version"]?.integer == 1 else {
      throw ModelFileError(
        url.path, "not a tinymixer mixer config (format tinymixer-mixer, version 1)")
    }
    guard let entries = json["experts"]?.array, !entries.isEmpty else {
      throw ModelFileError(url.path, "experts must be a non-empty list")
    }
    var experts: [(String, URL)] = []
    for entry in entries {
      guard let name = entry["name"]?.string, let path = entry["path"]?.string else {
        throw ModelFileError(url.path, "each expert needs a name and a path")
      }
      experts.append(
        (
          name,
          path.hasPrefix("/") ? URL(fileURLWithPath: path) : folder.appendingPathComponent(path)
        ))
    }
    guard let targets = json["target_modules"]?.array?.compactMap(\.string), !targets.isEmpty,
      let modeName = json["routing_mode"]?.string, let mode = RoutingMode(rawValue: modeName),
      let k = json["top_k"]?.integer, k >= 1,
      let inferenceK = json["inference_top_k"]?.integer, inferenceK >= 1,
      let temperature = json["temperature"]?.double, temperature > 0
    else {
      throw ModelFileError(
        url.path,
        "needs target_modules, routing_mode (soft, topk or hardsoft), top_k, inference_top_k (at least 1) and a positive temperature"
      )
    }
    // Absent in mixers written before the setting existed, which routed by token.
    let inputName = json["router_input"]?.string ?? RouterInput.token.rawValue
    guard let input = RouterInput(rawValue: inputName) else {
      throw ModelFileError(
        url.path,
        "router_input '\(inputName)' is not one of \(RouterInput.allCases.map(\.rawValue).joined(separator: ", "))"
      )
    }
    return Config(
      experts: experts, targets: targets,
      routing: RoutingSettings(
        mode: mode, input: input, k: k, inferenceK: inferenceK, temperature: temperature),
      baseModel: json["base_model_name_or_path"]?.string ?? "",
      sites: json["sites"]?.array?.compactMap(\.string))
  }

  /// Rebuilds the mixture saved in `folder` on `model` (the base it was trained on): reads
  /// the experts' adapter folders and the routers, checking that every site has its router
  /// of the right shape and that no router is left over. Returns the mixture and the
  /// experts' files.
  public static func load(from folder: URL, onto model: any CausalLanguageModel) throws -> (
    mixture: Mixture, experts: [LoRAAdapterFile]
  ) {
    let config = try readConfig(folder)
    var files: [LoRAAdapterFile] = []
    var experts: [(name: String, adapters: [String: LoRA])] = []
    let dtype = model.namedParameters().first?.tensor.dtype ?? .float32
    for (name, expertFolder) in config.experts {
      let file = try LoRAAdapterFile.load(from: expertFolder, dtype: dtype)
      let attached = try file.attach(to: model)
      files.append(file)
      experts.append(
        (name, Dictionary(uniqueKeysWithValues: attached.map { ($0.path, $0.adapter) })))
    }
    let mixture = Mixture(
      model: model, experts: experts, targets: config.targets, settings: config.routing, seed: 0)
    if let sites = config.sites, sites != mixture.sites.map(\.path) {
      throw ModelFileError(
        folder.appendingPathComponent(configName).path,
        "lists sites \(sites.joined(separator: ", ")) but the experts give \(mixture.sites.map(\.path).joined(separator: ", "))"
      )
    }
    let url = folder.appendingPathComponent(routersName)
    let routers = try readSafeTensors(url)
    var unused = Set(routers.tensors.keys)
    for (name, weight) in mixture.routerParameters() {
      guard let stored = routers.tensors[name] else {
        throw ModelFileError(url.path, "no router for site '\(name)'")
      }
      guard stored.shape == weight.shape, let values = Tensor(stored, dtype: weight.dtype) else {
        throw ModelFileError(
          url.path,
          "'\(name)' is \(stored.dtype.rawValue) \(stored.shape), expected floats \(weight.shape)")
      }
      guard values.isFinite else {
        throw ModelFileError(url.path, "router '\(name)' holds a NaN or an infinity")
      }
      weight.assign(values.storage)
      unused.remove(name)
    }
    if !unused.isEmpty {
      throw ModelFileError(
        url.path,
        "routers for sites the mixture does not have: \(unused.sorted().joined(separator: ", "))")
    }
    return (mixture, files)
  }
}
