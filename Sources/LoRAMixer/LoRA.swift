import Autodiff
import Foundation
import NN
import Random

/// A low-rank update of a Linear, as in LoRA and PEFT:
///
///     y = W x + s · B (A x),   A: [rank, inputs], B: [outputs, rank],   s = α / rank
///
/// (s = α / √rank for rsLoRA). A starts random and B at zero, so a fresh adapter changes
/// nothing; only A and B train, the base W stays frozen. The names match PEFT's checkpoint
/// keys: `lora_A.weight`, `lora_B.weight`.
public final class LoRA: Module, LinearAdapter {
  /// A: maps the inputs to `rank` numbers.
  @Child("lora_A") public private(set) var a: Linear
  /// B: maps `rank` numbers to the outputs.
  @Child("lora_B") public private(set) var b: Linear
  /// The scale s applied to B (A x).
  public let scale: Double
  /// The rank r.
  public var rank: Int { a.outputs }

  /// An adapter with given weights and scale.
  public init(a: Linear, b: Linear, scale: Double) {
    precondition(
      a.outputs == b.inputs,
      "lora_A \(a.weight.shape) and lora_B \(b.weight.shape) disagree on the rank")
    self.scale = scale
    super.init()
    self.a = a
    self.b = b
  }

  /// A fresh adapter for a Linear of `inputs` → `outputs`: A uniform in ±1/√inputs (PEFT's
  /// default, Kaiming-uniform with a = √5), B zero.
  public convenience init(
    inputs: Int, outputs: Int, rank: Int, alpha: Double, rsLoRA: Bool = false,
    dtype: DType = .float32,
    generator: inout SeededGenerator
  ) {
    let bound = 1 / Double(inputs).squareRoot()
    let a = Tensor.uniform(
      [rank, inputs], low: -bound, high: bound, dtype: dtype, generator: &generator)
    self.init(
      a: Linear(weight: a), b: Linear(weight: .zeros([outputs, rank], dtype: dtype)),
      scale: LoRA.scale(rank: rank, alpha: alpha, rsLoRA: rsLoRA))
  }

  /// α / r, or α / √r for rsLoRA.
  public static func scale(rank: Int, alpha: Double, rsLoRA: Bool) -> Double {
    rsLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank)
  }

  /// s · B (A x).
  public func delta(_ x: Tensor) -> Tensor { b(a(x)) * scale }

  /// `x · Wᵀ + delta(x)` in one operation, which writes the layer's output once
  /// (`lowRankLinear`; the same bits as `delta`'s sum for a power-of-two scale).
  public func output(_ x: Tensor, weight: Tensor) -> Tensor? {
    guard a.bias == nil, b.bias == nil, a.adapter == nil, b.adapter == nil else { return nil }
    return lowRankLinear(x, weight: weight, a: a.weight, b: b.weight, scale: scale)
  }

  /// The dense update s · B · A, `[outputs, inputs]`.
  public var denseUpdate: Tensor { matmul(b.weight, a.weight) * scale }

  /// Adds the update into `linear.weight` and detaches the adapter: the layer then computes
  /// the same function with no extra cost. `unmerge` undoes it.
  public func merge(into linear: Linear) {
    precondition(linear.adapter === self, "merge into the layer this adapter is attached to")
    linear.weight.assign((linear.weight.detached() + denseUpdate.detached()).storage)
    linear.adapter = nil
  }

  /// Subtracts the update from `linear.weight` and attaches the adapter again.
  public func unmerge(from linear: Linear) {
    precondition(linear.adapter == nil, "unmerge from a layer without an adapter")
    linear.weight.assign((linear.weight.detached() - denseUpdate.detached()).storage)
    linear.adapter = self
  }
}

/// The projections LoRA targets by default: the four of attention in every layer.
public let attentionProjections = ["q_proj", "k_proj", "v_proj", "o_proj"]
/// The projections of the MLP, for the placement ablation.
public let mlpProjections = ["gate_proj", "up_proj", "down_proj"]

/// A Mamba mixer's projections, where the paper routes its experts on Falcon-Mamba (its
/// Figure 2): A, D and the convolution carry none.
///
/// Only `in_proj` and `x_proj` adapters carry over to PyTorch as they are: PEFT 0.21.2
/// refuses LoRA on a Mamba's `out_proj` (the fused CUDA path reads its weight directly),
/// and transformers 5.24's Mamba multiplies by `dt_proj.weight` itself, so a LoRA there is
/// silently left out (measured on a tiny Mamba: a tinymixer adapter on in_proj and x_proj
/// gives PEFT's logits to 2.4e-7; one on dt_proj alone differs by 6.4e-6 in Float64).
public let mambaProjections = ["in_proj", "x_proj", "dt_proj", "out_proj"]

/// Every projection: a Llama decoder layer's seven (attention and MLP), the toy default,
/// and a Mamba mixer's four. A model has one kind, so on each this is all of its own.
public let allProjections = attentionProjections + mlpProjections + mambaProjections

extension Module {
  /// Every Linear below this module whose last path component is in `names`, with its path.
  public func linearLayers(named names: [String]) -> [(path: String, layer: Linear)] {
    namedModules().compactMap { path, module in
      guard let linear = module as? Linear,
        names.contains(String(path.split(separator: ".").last ?? ""))
      else {
        return nil
      }
      return (path, linear)
    }
  }

  /// `linearLayers(named: targets)`, which must find at least one: a Llama has no
  /// `in_proj` and a Mamba no `q_proj`, and an adapter on nothing would train nothing.
  public func projections(named targets: [String]) throws -> [(path: String, layer: Linear)] {
    let found = linearLayers(named: targets)
    guard !found.isEmpty else { throw NoSuchProjections(targets: targets) }
    return found
  }

  /// Detaches the adapter of every Linear below this module, and every feed-forward
  /// block's replacement.
  public func detachAdapters() {
    for module in namedModules().map(\.module) {
      (module as? Linear)?.adapter = nil
      (module as? MLP)?.replacement = nil
    }
  }

  /// `body`'s result with every adapter below this module detached, then reattached: the
  /// frozen base's answer, for comparison.
  public func withoutAdapters<Result>(_ body: () throws -> Result) rethrows -> Result {
    let attached = namedModules().compactMap { $0.module as? Linear }.compactMap { linear in
      linear.adapter.map { (linear, $0) }
    }
    for (linear, _) in attached { linear.adapter = nil }
    defer { for (linear, adapter) in attached { linear.adapter = adapter } }
    return try body()
  }

  /// The LoRA adapters attached below this module, by layer path.
  public func loraAdapters() -> [(path: String, adapter: LoRA)] {
    namedModules().compactMap { path, module in
      guard let linear = module as? Linear, let lora = linear.adapter as? LoRA else { return nil }
      return (path, lora)
    }
  }
}

/// Freezes `model` and attaches a fresh LoRA to every Linear named in `targets`; returns
/// the adapters by layer path. Initialisation is determined by `seed`.
@discardableResult
public func attachLoRA(
  to model: Module, targets: [String] = attentionProjections, rank: Int, alpha: Double,
  rsLoRA: Bool = false, seed: UInt64
) -> [(path: String, adapter: LoRA)] {
  model.setTrainable(false)
  var generator = SeededGenerator(seed: seed)
  return model.linearLayers(named: targets).map { path, linear in
    let lora = LoRA(
      inputs: linear.inputs, outputs: linear.outputs, rank: rank, alpha: alpha, rsLoRA: rsLoRA,
      dtype: linear.weight.dtype, generator: &generator)
    linear.adapter = lora
    return (path, lora)
  }
}

/// Adapter or routing targets that name none of a model's projections.
public struct NoSuchProjections: Error, CustomStringConvertible {
  /// The projection names asked for.
  public let targets: [String]
  /// `none of q_proj, k_proj is a projection of this base`.
  public var description: String {
    "none of \(targets.joined(separator: ", ")) is a projection of this base"
  }
}
