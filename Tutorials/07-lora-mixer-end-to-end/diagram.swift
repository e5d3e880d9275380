import Diagrams
import LoRAMixer
import NN
import Training

/// The picture of the mixture (`mixture.svg`), drawn from a real one: a Llama of the base
/// recipe's shape (random weights) with two experts on every projection, each routed site placed by the
/// layer and projection its path names.
func mixtureDiagram() -> Diagram {
  let recipe = BaseRecipe()
  let model = LlamaForCausalLM(
    LlamaConfiguration(
      vocabularySize: 16, hiddenSize: recipe.hiddenSize, layers: recipe.layers,
      heads: recipe.heads, intermediateSize: recipe.intermediateSize, contextLength: 8),
    seed: 0)
  let experts = ["toy-sst2", "toy-cola"].enumerated().map { index, name in
    let adapters = attachLoRA(
      to: model, targets: allProjections, rank: 2, alpha: 4, seed: UInt64(index))
    return (name, Dictionary(uniqueKeysWithValues: adapters.map { ($0.path, $0.adapter) }))
  }
  let settings = MixRecipe().routing
  let mixture = Mixture(model: model, experts: experts, settings: settings, seed: 0)
  // Each site's layer and projection, read from its path (model.layers.L.self_attn.q_proj).
  let placed = mixture.sites.map { path, site in
    let parts = path.split(separator: ".")
    return (
      layer: Int(parts[2])!, block: String(parts[3]), projection: String(parts[4]), site: site
    )
  }
  let projections = placed.filter { $0.layer == 0 }.map { ($0.block, $0.projection) }
  let layers = (placed.map(\.layer).max() ?? 0) + 1

  var diagram = Diagram(
    width: 820, height: 520,
    title:
      "The mixture: \(mixture.sites.count) routed sites, \(layers) layers × \(projections.count) projections"
  )
  let (left, top, columnWidth, rowHeight) = (150.0, 90.0, 160.0, 44.0)
  for layer in 0..<layers {
    diagram.text(
      "layer \(layer)", x: left + Double(layer) * columnWidth + 70, y: top - 12, bold: true)
  }
  for (row, (block, projection)) in projections.enumerated() {
    let y = top + Double(row) * rowHeight + (block == "mlp" ? 16 : 0)
    diagram.text(projection, x: 40, y: y + 22, anchor: "start")
    for site in placed where site.projection == projection && site.block == block {
      diagram.box(
        x: left + Double(site.layer) * columnWidth, y: y, width: 140, height: rowHeight - 8,
        lines: [
          "router \(site.site.router.weight.shape.map(String.init).joined(separator: "×"))",
          "\(site.site.presentCount) experts",
        ], fill: block == "mlp" ? .frozen : .router)
    }
  }
  let blocksBottom = top + Double(projections.count) * rowHeight + 16
  diagram.text(
    "attention (self_attn) above, MLP below; every expert frozen, every router trained",
    x: 40, y: blocksBottom + 20, anchor: "start", color: "#555")
  // The path of a token through the model.
  let flow = ["embed_tokens"] + (0..<layers).map { "layer \($0)" } + ["norm", "lm_head"]
  let step = (820.0 - 80) / Double(flow.count)
  for (index, name) in flow.enumerated() {
    let x = 40 + Double(index) * step
    diagram.box(x: x, y: blocksBottom + 40, width: step - 20, height: 34, lines: [name])
    if index > 0 {
      diagram.arrow(from: (x - 20, blocksBottom + 57), to: (x, blocksBottom + 57))
    }
  }
  diagram.text(
    "a token's routing at every site: \(settings.input.rawValue) (the mean of the site's router logits over tokens 1…t), \(settings.mode.rawValue) top-\(settings.k)",
    x: 40, y: blocksBottom + 100, size: 11, anchor: "start", color: "#555")
  return diagram
}
