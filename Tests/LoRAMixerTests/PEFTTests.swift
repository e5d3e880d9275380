import Autodiff
import Foundation
import NN
import Random
import SafeTensors
import Testing

@testable import LoRAMixer

/// Writes a PEFT adapter directory by hand: `config` as adapter_config.json, and for each
/// layer path a random A `[rank, 16]` and B `[16, rank]` (keys with the PEFT prefix unless
/// `bareKeys`), plus `extraKeys`.
func writeAdapter(
  _ folder: URL, config: JSON, ranks: [String: Int], bareKeys: Bool = false,
  extraKeys: [String] = [], seed: UInt64
) throws {
  var generator = SeededGenerator(seed: seed)
  var file = SafeTensorsFile()
  let prefix = bareKeys ? "" : LoRAAdapterFile.keyPrefix
  for (path, rank) in ranks {
    let a = Tensor.normal([rank, 16], dtype: .float64, generator: &generator)
    let b = Tensor.normal([16, rank], dtype: .float64, generator: &generator)
    file.tensors["\(prefix)\(path).lora_A.weight"] = SafeTensor(shape: a.shape, doubles: a.doubles)
    file.tensors["\(prefix)\(path).lora_B.weight"] = SafeTensor(shape: b.shape, doubles: b.doubles)
  }
  for key in extraKeys { file.tensors[key] = SafeTensor(shape: [2], doubles: [1, 2]) }
  try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
  try Data(config.prettyText().utf8).write(to: folder.appendingPathComponent("adapter_config.json"))
  try file.write(to: folder.appendingPathComponent("adapter_model.safetensors"))
}

func loraConfig(
  r: Int, alpha: Double, rsLoRA: Bool = false, targets: JSON,
  rankPattern: [(String, JSON)] = [], alphaPattern: [(String, JSON)] = []
) -> JSON {
  .object([
    ("peft_type", .string("LORA")), ("r", .integer(r)), ("lora_alpha", .double(alpha)),
    ("use_rslora", .bool(rsLoRA)), ("target_modules", targets),
    ("rank_pattern", .object(rankPattern)), ("alpha_pattern", .object(alphaPattern)),
  ])
}

let layer = "model.layers"

@Test func rankAndAlphaPatternsRegexTargetsAndEveryOmissionAreRead() throws {
  let folder = temporaryFolder("peft")
  defer { try? FileManager.default.removeItem(at: folder) }
  try writeAdapter(
    folder,
    config: loraConfig(
      r: 2, alpha: 4, targets: .string(#"model\.layers\.\d+\.self_attn\.(q|v)_proj"#),
      rankPattern: [("q_proj", .integer(4))],
      alphaPattern: [("\(layer).1.self_attn.v_proj", .double(10))]),
    ranks: [
      "\(layer).0.self_attn.q_proj": 4, "\(layer).1.self_attn.q_proj": 4,
      "\(layer).0.self_attn.v_proj": 2, "\(layer).1.self_attn.v_proj": 2,
    ],
    bareKeys: true, extraKeys: ["base_model.model.lm_head.modules_to_save.weight"], seed: 1)
  let adapter = try LoRAAdapterFile.load(from: folder, dtype: .float64)
  #expect(adapter.sites["\(layer).0.self_attn.q_proj"]!.scale == 1)  // 4 / 4
  #expect(adapter.sites["\(layer).0.self_attn.v_proj"]!.scale == 2)  // 4 / 2
  #expect(adapter.sites["\(layer).1.self_attn.v_proj"]!.scale == 5)  // 10 / 2
  #expect(adapter.unplacedKeys == ["base_model.model.lm_head.modules_to_save.weight"])
  let model = LlamaForCausalLM(small, seed: 1, dtype: .float64)
  #expect(try adapter.targetedLayers(in: model).count == 4)
  #expect(
    try adapter.omissions(on: model) == [
      "key 'base_model.model.lm_head.modules_to_save.weight' is not a lora_A or lora_B weight; not used"
    ])

  // A list that targets more layers than the file has: each missing one is named.
  var listed = adapter
  listed.config = loraConfig(
    r: 2, alpha: 4, targets: .array([.string("q_proj"), .string("o_proj")]))
  let omissions = try listed.omissions(on: model)
  #expect(
    omissions.contains(
      "layer '\(layer).1.self_attn.o_proj' is targeted by target_modules but has no weights; left as the base"
    ))
  listed.config = loraConfig(r: 2, alpha: 4, targets: .string("all-linear"))
  #expect(try listed.targetedLayers(in: model).count == 2 * 7)
}

@Test func aRankThatDisagreesWithTheConfigIsNamed() throws {
  let folder = temporaryFolder("peft-rank")
  defer { try? FileManager.default.removeItem(at: folder) }
  try writeAdapter(
    folder, config: loraConfig(r: 2, alpha: 4, targets: .array([.string("q_proj")])),
    ranks: ["\(layer).0.self_attn.q_proj": 3], seed: 2)
  #expect {
    try LoRAAdapterFile.load(from: folder)
  } throws: { error in
    "\(error)".contains(
      "layer 'model.layers.0.self_attn.q_proj' has rank 3 but the config gives it rank 2")
  }
}

@Test func heterogeneousAdaptersRouteTogetherAsTheClosedFormSays() throws {
  // Three public-style adapters: different ranks, alphas, rsLoRA and targets.
  let root = temporaryFolder("hetero")
  defer { try? FileManager.default.removeItem(at: root) }
  let specs: [(JSON, [String: Int])] = [
    (
      loraConfig(r: 2, alpha: 4, targets: .array([.string("q_proj"), .string("v_proj")])),
      [
        "\(layer).0.self_attn.q_proj": 2, "\(layer).0.self_attn.v_proj": 2,
        "\(layer).1.self_attn.q_proj": 2, "\(layer).1.self_attn.v_proj": 2,
      ]
    ),
    (
      loraConfig(
        r: 4, alpha: 8, rsLoRA: true, targets: .array([.string("v_proj"), .string("o_proj")])),
      [
        "\(layer).0.self_attn.v_proj": 4, "\(layer).1.self_attn.v_proj": 4,
        "\(layer).1.self_attn.o_proj": 4,
      ]
    ),
    (
      loraConfig(r: 3, alpha: 3, targets: .array([.string("q_proj")])),
      ["\(layer).1.self_attn.q_proj": 3]
    ),
  ]
  let model = LlamaForCausalLM(small, seed: 1, dtype: .float64)
  var experts: [(name: String, adapters: [String: LoRA])] = []
  var files: [LoRAAdapterFile] = []
  for (index, (config, ranks)) in specs.enumerated() {
    let folder = root.appendingPathComponent("e\(index)")
    try writeAdapter(folder, config: config, ranks: ranks, seed: 10 + UInt64(index))
    let file = try LoRAAdapterFile.load(from: folder, dtype: .float64)
    files.append(file)
    let attached = try file.attach(to: model)
    experts.append(
      ("e\(index)", Dictionary(uniqueKeysWithValues: attached.map { ($0.path, $0.adapter) })))
  }
  let mixture = Mixture(
    model: model, experts: experts, settings: RoutingSettings(mode: .soft, k: 2), seed: 3)
  #expect(
    mixture.sites.map(\.path) == [
      "\(layer).0.self_attn.q_proj", "\(layer).0.self_attn.v_proj", "\(layer).1.self_attn.q_proj",
      "\(layer).1.self_attn.v_proj", "\(layer).1.self_attn.o_proj",
    ])

  // Layer 1's v_proj holds e0 (scale 4/2) and e1 (rsLoRA: 8/√4); e2 is absent there.
  let path = "\(layer).1.self_attn.v_proj"
  let site = mixture.sites.first { $0.path == path }!.site
  #expect(site.router.present == [true, true, false])
  let linear = model.linearLayers(named: ["v_proj"]).first { $0.path == path }!.layer
  var generator = SeededGenerator(seed: 4)
  let x = Tensor.normal([5, 16], dtype: .float64, generator: &generator)
  let routed = mixture.routing.run(.training) { linear(x) }.result.doubles

  func product(_ m: [Double], _ rows: Int, _ inner: Int, _ v: [Double]) -> [Double] {
    (0..<rows).map { r in (0..<inner).reduce(0) { $0 + m[r * inner + $1] * v[$1] } }
  }
  let w = linear.weight.doubles
  let router = site.router.weight.doubles
  let scales = [4.0 / 2, 8.0 / 2]
  let factors = [0, 1].map { files[$0].sites[path]! }
  for token in 0..<5 {
    let xs = Array(x.doubles[token * 16..<(token + 1) * 16])
    let logits = product(router, 3, 16, xs)
    let e = [exp(logits[0]), exp(logits[1])]  // e2 is left out of the softmax
    let weights = e.map { $0 / (e[0] + e[1]) }
    var expected = product(w, 16, 16, xs)
    for expert in 0..<2 {
      let rank = factors[expert].rank
      let down = product(factors[expert].a.doubles, rank, 16, xs)
      let up = product(factors[expert].b.doubles, 16, rank, down)
      for o in 0..<16 { expected[o] += weights[expert] * scales[expert] * up[o] }
    }
    let got = Array(routed[token * 16..<(token + 1) * 16])
    #expect(
      zip(got, expected).allSatisfy { abs($0 - $1) <= 1e-12 * max(1, abs($1)) }, "token \(token)")
  }

  // A single present expert (e1 alone at layer 1's o_proj) gets weight 1: the plain LoRA.
  let oPath = "\(layer).1.self_attn.o_proj"
  let oLinear = model.linearLayers(named: ["o_proj"]).first { $0.path == oPath }!.layer
  let routedO = oLinear(x).doubles
  let plain = matmul(x, oLinear.weight, transposeB: true) + experts[1].adapters[oPath]!.delta(x)
  #expect(zip(routedO, plain.doubles).allSatisfy { abs($0 - $1) <= 1e-12 })

  // The mixer folder round-trips bit-exactly.
  let saved = root.appendingPathComponent("mixer")
  try MixerFiles.save(mixture, experts: files, baseModel: "base", to: saved)
  let fresh = LlamaForCausalLM(small, seed: 1, dtype: .float64)
  let (reloaded, _) = try MixerFiles.load(from: saved, onto: fresh)
  #expect(reloaded.expertNames == mixture.expertNames)
  let ids = (0..<8).map { $0 % 17 }
  let before = mixture.forward(ids, batch: 1, length: 8, phase: .inference).logits.doubles
  let after = reloaded.forward(ids, batch: 1, length: 8, phase: .inference).logits.doubles
  #expect(before == after)
  #expect(
    zip(mixture.routerParameters(), reloaded.routerParameters()).allSatisfy {
      $0.name == $1.name && $0.tensor.doubles == $1.tensor.doubles
    })
}

/// PEFT reads `rank_pattern` and `alpha_pattern` keys as regular expressions matched
/// against the whole layer path or a dot-separated ending of it, the first key in the
/// file's order winning. The expected ranks and scales below are the ones PEFT 0.21.2's own
/// `get_pattern_key` (`peft/utils/other.py`) gives these keys and paths.
@Test func rankAndAlphaPatternKeysAreRegularExpressionsAsPEFTReadsThem() throws {
  let folder = temporaryFolder("peft-regex")
  defer { try? FileManager.default.removeItem(at: folder) }
  var ranks: [String: Int] = [:]
  for index in 0..<2 {
    for projection in ["q_proj", "v_proj"] {
      ranks["\(layer).\(index).self_attn.\(projection)"] = 2
    }
  }
  ranks["\(layer).0.self_attn.q_proj"] = 3  // rank_pattern's first key
  try writeAdapter(
    folder,
    config: loraConfig(
      r: 2, alpha: 4, targets: .array([.string("q_proj"), .string("v_proj")]),
      rankPattern: [(#"layers\.[0]\.self_attn\.q_proj"#, .integer(3))],
      alphaPattern: [
        (#"layers\.[1]\.self_attn\.v_proj"#, .double(64)),  // a regex over the path's ending
        ("v_proj", .double(8)),  // every other v_proj: a suffix of whole components
        ("attn.q", .double(100)),  // not a whole component: matches nothing
      ]),
    ranks: ranks, seed: 3)
  let adapter = try LoRAAdapterFile.load(from: folder, dtype: .float64)
  let scale = { (index: Int, projection: String) in
    adapter.sites["\(layer).\(index).self_attn.\(projection)"]!.scale
  }
  #expect(adapter.sites["\(layer).0.self_attn.q_proj"]!.a.shape == [3, 16])
  #expect(scale(0, "q_proj") == 4.0 / 3)  // rank 3 by its pattern, the default alpha
  #expect(scale(1, "q_proj") == 2)  // 4 / 2: "attn.q" does not match "…self_attn.q_proj"
  #expect(scale(1, "v_proj") == 32)  // 64 / 2, the first key that matches
  #expect(scale(0, "v_proj") == 4)  // 8 / 2

  // A key that is not a regular expression is named, not skipped.
  try writeAdapter(
    folder,
    config: loraConfig(
      r: 2, alpha: 4, targets: .array([.string("q_proj")]), rankPattern: [("q_proj[", .integer(3))]),
    ranks: ["\(layer).0.self_attn.q_proj": 2], seed: 4)
  #expect {
    try LoRAAdapterFile.load(from: folder)
  } throws: { error in "\(error)".contains("key 'q_proj[' is not a regular expression") }
}

/// PEFT applies an adapter only where `target_modules` (and `layers_to_transform`) say,
/// whatever other weights the file holds, and refuses targets the model does not have.
@Test func targetModulesAndLayersToTransformAreHonouredAsPEFTAppliesThem() throws {
  let folder = temporaryFolder("peft-targets")
  defer { try? FileManager.default.removeItem(at: folder) }
  var ranks: [String: Int] = [:]
  for index in 0..<2 {
    for projection in ["q_proj", "k_proj", "v_proj", "o_proj"] {
      ranks["\(layer).\(index).self_attn.\(projection)"] = 2
    }
  }
  func attached(_ config: JSON) throws -> [String] {
    try writeAdapter(folder, config: config, ranks: ranks, seed: 5)
    let model = LlamaForCausalLM(small, seed: 1, dtype: .float64)
    return try LoRAAdapterFile.load(from: folder, dtype: .float64).attach(to: model).map(\.path)
  }
  #expect(
    try attached(loraConfig(r: 2, alpha: 4, targets: .array([.string("q_proj")])))
      == ["\(layer).0.self_attn.q_proj", "\(layer).1.self_attn.q_proj"])
  var onlyLayerZero = loraConfig(
    r: 2, alpha: 4, targets: .array([.string("q_proj"), .string("v_proj")]))
  onlyLayerZero = .object(onlyLayerZero.object! + [("layers_to_transform", .array([.integer(0)]))])
  #expect(
    try attached(onlyLayerZero) == ["\(layer).0.self_attn.q_proj", "\(layer).0.self_attn.v_proj"])
  #expect {
    try attached(loraConfig(r: 2, alpha: 4, targets: .array([.string("foo_proj")])))
  } throws: { error in "\(error)".contains("target_modules [\"foo_proj\"] selects no layer") }

  // The weights left out are named, and the model computes what PEFT's would: only q_proj.
  try writeAdapter(
    folder, config: loraConfig(r: 2, alpha: 4, targets: .array([.string("q_proj")])),
    ranks: ranks, seed: 5)
  let adapter = try LoRAAdapterFile.load(from: folder, dtype: .float64)
  let model = LlamaForCausalLM(small, seed: 1, dtype: .float64)
  #expect(
    try adapter.omissions(on: model).contains(
      "layer '\(layer).1.self_attn.o_proj' has weights but target_modules and layers_to_transform leave it out; not used"
    ))
  try adapter.attach(to: model)
  var onlyQ = adapter
  onlyQ.sites = adapter.sites.filter { $0.key.hasSuffix("q_proj") }
  let reference = LlamaForCausalLM(small, seed: 1, dtype: .float64)
  try onlyQ.attach(to: reference)
  #expect(
    model.logits(tokens, batch: 2, length: 8).doubles
      == reference.logits(tokens, batch: 2, length: 8).doubles)
}
