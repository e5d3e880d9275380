import Autodiff
import Diagrams
import LoRAMixer
import NN

/// The picture of one routed site (`routed-site.svg`), drawn from a real one: the q_proj of
/// a small Llama's first layer in a mixture of three experts, with its shapes and names as
/// the site holds them.
func routedSiteDiagram() -> Diagram {
  let model = LlamaForCausalLM(
    LlamaConfiguration(
      vocabularySize: 16, hiddenSize: 8, layers: 1, heads: 2, intermediateSize: 16,
      contextLength: 8),
    seed: 0)
  let experts = (0..<3).map { index in
    let adapters = attachLoRA(to: model, rank: 2, alpha: 4, seed: UInt64(index))
    return (
      name: "expert \(index)",
      adapters: Dictionary(uniqueKeysWithValues: adapters.map { ($0.path, $0.adapter) })
    )
  }
  let mixture = Mixture(model: model, experts: experts, settings: RoutingSettings(), seed: 0)
  let (path, site) = mixture.sites[0]
  let base = model.linearLayers(named: [String(path.split(separator: ".").last!)])[0].layer
  let settings = mixture.routing.settings
  func shape(_ tensor: Tensor) -> String { tensor.shape.map(String.init).joined(separator: "×") }

  var diagram = Diagram(width: 820, height: 460, title: "One routed site: \(path)")
  diagram.box(x: 30, y: 200, width: 70, height: 40, lines: ["x"], fill: .value)
  // The frozen projection itself.
  diagram.box(
    x: 170, y: 60, width: 200, height: 40, lines: ["W \(shape(base.weight)), frozen", "W x"],
    fill: .frozen)
  diagram.arrow(from: (100, 210), to: (170, 80))
  // The router and what it decides.
  diagram.box(
    x: 170, y: 380, width: 200, height: 46,
    lines: [
      "router R \(shape(site.router.weight)), trained",
      "p = softmax(R x), \(settings.mode.rawValue) top-\(settings.k)",
    ], fill: .router)
  diagram.arrow(from: (100, 232), to: (170, 400))
  // The experts: each a frozen LoRA, weighted by the router.
  for (index, expert) in site.experts.enumerated() {
    guard let expert else { continue }
    let y = 130 + Double(index) * 78
    diagram.box(
      x: 170, y: y, width: 200, height: 46,
      lines: [
        "\(site.names[index]): A \(shape(expert.a.weight)), B \(shape(expert.b.weight))",
        "s · B A x, s = \(String(format: "%g", expert.scale)), frozen",
      ], fill: .frozen)
    diagram.arrow(from: (100, 220), to: (170, y + 23))
    diagram.box(x: 450, y: y + 6, width: 90, height: 34, lines: ["× w\(index)"], fill: .router)
    diagram.arrow(from: (370, y + 23), to: (450, y + 23))
    let column = 470 + Double(index) * 25
    diagram.arrow(from: (column, 385), to: (column, y + 40), color: "#2e7d32", dashed: true)
    diagram.arrow(from: (540, y + 23), to: (640, 225))
  }
  diagram.box(
    x: 440, y: 385, width: 110, height: 40, lines: ["w, one per expert", "per token"],
    fill: .router)
  diagram.arrow(from: (370, 405), to: (440, 405))
  diagram.box(x: 640, y: 205, width: 40, height: 40, lines: ["+"])
  diagram.arrow(from: (370, 80), to: (660, 205))
  diagram.box(x: 720, y: 205, width: 70, height: 40, lines: ["y"])
  diagram.arrow(from: (680, 225), to: (720, 225))
  return diagram
}
