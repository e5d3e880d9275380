import Autodiff
import Kernels
import NN
import Random
import ToyTasks
import Training

// MoLE, "Mixture of LoRA Experts" (Wu, Huang and Wei, ICLR 2024), one of the baselines of
// the LoRA-Mixer paper's Table 2: the frozen task LoRAs mixed by one learned gate per
// decoder layer, which reads the experts' *outputs* (not the projection's input, as
// LoRA-Mixer's routers do) and weighs every projection of its layer alike. MoLE's code was
// never released; where its paper leaves a choice to us, the doc comments below say what
// we chose and why.

/// MoLE's gate of one decoder layer.
///
/// For each token the gate scores every expert's output: E_i, each expert's `s·B_i A_i x`
/// at the layer's first projection, averaged over the sequence so far (`<bos>` left out);
/// the experts' averages, side by side, divided by their root mean square (MoLE's
/// normalisation); logits `ε_i = ⟨Ê_i, e⟩ / τ` with one learned vector e shared by the
/// experts; weights `softmax(ε)`. MoLE gates a whole input at once, from the expert outputs
/// of all its tokens; a causal model that read later tokens would see the answer it is
/// trained to predict, so the gate of token t reads tokens up to t, as tinymixer's default
/// router does. The first projection is the one whose input is the layer's own input: the
/// others run on what the gate's weights have already mixed.
public final class LayerGate: Module {
  /// e, `[outputs of the layer's first projection]`: what the normalised outputs are
  /// scored against.
  public let e: Tensor
  /// The softmax temperature τ.
  public let temperature: Double
  /// The weights of the running forward pass, `[tokens, experts]`, set by the layer's
  /// first site and read by the others.
  private(set) var current: Tensor?
  /// Every weight tensor computed while `recording`, in order: the balance loss reads them.
  private(set) var history: [Tensor] = []
  /// Whether `weigh` keeps its weights in `history` (only while a loss is computed, so that
  /// evaluation keeps nothing).
  var recording = false {
    didSet { history = [] }
  }

  /// A gate over outputs of `size` numbers, e drawn with standard deviation 0.02 from
  /// `generator` (as a router's rows are), so that every expert starts near 1/E.
  public init(size: Int, temperature: Double, dtype: DType, generator: inout SeededGenerator) {
    e = .normal([size], standardDeviation: 0.02, dtype: dtype, generator: &generator)
    self.temperature = temperature
    super.init()
    e.requiresGradient = true
  }

  override public var ownParameters: [(name: String, tensor: Tensor)] { [("e", e)] }

  /// The weights, `[tokens, experts]`, from each expert's output `[tokens, size]` at the
  /// layer's first site, for sequences of `length` tokens; kept as `current`.
  @discardableResult
  func weigh(_ outputs: [Tensor], length: Int) -> Tensor {
    let tokens = outputs[0].shape[0]
    let size = e.count
    // The running mean of the experts' outputs side by side, [tokens, experts · size]: one
    // product instead of one per expert, each column its own mean.
    let sideBySide = prefixMean(
      concatenate(outputs, along: 1), length: length, skippingFirst: true)
    let normalised =
      sideBySide * rsqrt((sideBySide * sideBySide).mean(axes: [-1], keepDimensions: true) + 1e-6)
    let logits = matmul(
      normalised.reshaped([tokens * outputs.count, size]), e.reshaped([size, 1]))
    let weights = (logits.reshaped([tokens, outputs.count]) / temperature).softmax()
    current = weights
    if recording { history.append(weights) }
    return weights
  }
}

/// A projection mixed by MoLE: the frozen Linear plus `Σ_i w_i · s_i B_i A_i x`, with w the
/// weights of its layer's gate. The layer's first site computes them; every site of the
/// layer uses them.
public final class GatedSite: Module, LinearAdapter {
  /// The experts, one LoRA each, frozen.
  public let experts: [LoRA]
  /// The gate of this site's decoder layer.
  public let gate: LayerGate
  /// Whether this is the layer's first site, the one that computes the gate's weights.
  public let computesGate: Bool
  /// Where each expert's rank sits among the stacked ranks, fixed by the experts.
  let ranks: [RankColumns]

  /// A site over `experts`, weighed by `gate`.
  public init(experts: [LoRA], gate: LayerGate, computesGate: Bool) {
    (self.experts, self.gate, self.computesGate) = (experts, gate, computesGate)
    ranks = stackedRanks(experts)
    super.init()
  }

  /// `Σ_i w_i s_i B_i (A_i x)` for `x` of shape `[batch, length, inputs]` (or a matrix: one
  /// sequence). The first site needs every expert's output apart, for the gate to read; the
  /// others need only the weighted sum, two products over the experts' stacked ranks.
  public func delta(_ x: Tensor) -> Tensor {
    let rows = x.reshaped([-1, x.shape.last!])
    let mixed: Tensor
    if computesGate {
      let outputs = experts.map { $0.delta(rows) }
      let weights = gate.weigh(outputs, length: x.rank == 3 ? x.shape[1] : rows.shape[0])
      let terms = outputs.indices.map { outputs[$0] * weights.sliced(along: 1, $0..<$0 + 1) }
      mixed = terms.dropFirst().reduce(terms[0], +)
    } else {
      guard let weights = gate.current else {
        preconditionFailure("a layer's first site computes its gate before the others read it")
      }
      mixed = weightedExperts(rows, experts, weights: weights, ranks: ranks)
    }
    return mixed.reshaped(Array(x.shape.dropLast()) + [mixed.shape[1]])
  }
}

/// How MoLE's gates are trained: on the same mixed examples as LoRA-Mixer's routers, with
/// the task loss plus α times the gating balance loss.
public struct LayerGateRecipe: Equatable, Hashable, Sendable {
  /// The softmax temperature τ.
  public var temperature = 1.0
  /// α, the weight of the balance loss. MoLE's paper does not state it in the text we
  /// follow; 0.01 is the weight LoRA-Mixer's paper gives its own balance term.
  public var balanceWeight = 0.01
  /// Mixed training examples, drawn evenly from the tasks: the routers' default.
  public var examples = MixRecipe().routerExamples
  /// The routers' training: steps, batch, learning rate, length groups.
  public var training = MixRecipe().training
  /// The projections mixed: every one, as the experts cover.
  public var targets = allProjections

  /// The defaults above.
  public init() {}
}

/// A frozen model whose projections mix frozen LoRA experts by one gate per decoder layer
/// (MoLE).
public final class LayerGatedMixture {
  /// The model, with a `GatedSite` as the adapter of every mixed projection.
  public let model: any CausalLanguageModel
  /// The experts' names, in weight order.
  public let expertNames: [String]
  /// The gates, one per decoder layer that has a mixed projection, in layer order.
  public let gates: [LayerGate]
  /// The sites, by layer path, in the model's order.
  public let sites: [(path: String, site: GatedSite)]

  /// Mixes `model`'s Linears named in `targets` over `experts` (each a name and its
  /// adapters by layer path; every expert must have weights at every such Linear), with
  /// gates of temperature `temperature` initialised from `seed`. The model and the experts
  /// are frozen; only the gates train.
  public init(
    model: any CausalLanguageModel, experts: [(name: String, adapters: [String: LoRA])],
    targets: [String] = allProjections, temperature: Double = 1, seed: UInt64
  ) {
    precondition(!experts.isEmpty, "a mixture needs experts")
    self.model = model
    expertNames = experts.map(\.name)
    model.detachAdapters()
    model.setTrainable(false)
    var generator = SeededGenerator(seed: seed)
    var gates: [Int: LayerGate] = [:]
    var sites: [(String, GatedSite)] = []
    for (path, linear) in model.linearLayers(named: targets) {
      let bank = experts.compactMap { $0.adapters[path] }
      precondition(bank.count == experts.count, "every expert needs weights at \(path)")
      for expert in bank { expert.setTrainable(false) }
      let layer = Mixture.decoderLayer(path)
      let first = gates[layer] == nil
      if first {
        gates[layer] = LayerGate(
          size: linear.outputs, temperature: temperature, dtype: linear.weight.dtype,
          generator: &generator)
      }
      let site = GatedSite(experts: bank, gate: gates[layer]!, computesGate: first)
      linear.adapter = site
      sites.append((path, site))
    }
    self.gates = gates.keys.sorted().map { gates[$0]! }
    self.sites = sites
  }

  /// Every gate's vector, named by its decoder layer.
  public func gateParameters() -> [(name: String, tensor: Tensor)] {
    gates.enumerated().map { ("layers.\($0).gate.e", $1.e) }
  }

  /// MoLE's gating balance loss, `-Σ_i log q_i`, with q_i the mean weight of expert i over
  /// every gate and the given rows of each weight tensor (`rows[j]` for `weights[j]`, the
  /// real tokens). It is smallest, `E log E`, when every expert gets 1/E on average.
  public static func balanceLoss(_ weights: [Tensor], rows: [[Int]]) -> Tensor {
    precondition(weights.count == rows.count && !weights.isEmpty, "rows for every weight tensor")
    let counted = Double(rows.reduce(0) { $0 + $1.count })
    let sums = zip(weights, rows).map { $0.gatherRows($1, shape: [$1.count]).sum(axes: [0]) }
    let mean = sums.dropFirst().reduce(sums[0], +) / counted
    return -log(mean).sum()
  }

  /// The loss of `examples`: the answers' cross-entropy plus `balanceWeight` times the
  /// balance loss over the real tokens of every gate. Returns it with its two parts and the
  /// tokens seen.
  public func loss(
    _ examples: [Example], tokenizer: Tokenizer, balanceWeight: Double, lengthGroups: Int = 1
  ) -> (value: Tensor, task: Double, balance: Double, tokens: Int) {
    for gate in gates { gate.recording = true }
    defer { for gate in gates { gate.recording = false } }
    let batches = tokenizer.answerBatches(examples, groups: lengthGroups)
    let task = model.weightedLoss(batches)
    let real = batches.map(Mixture.realTokens)
    let balance = Self.balanceLoss(gates.flatMap(\.history), rows: gates.flatMap { _ in real })
    return (
      task + balance * balanceWeight, task.item, balance.item,
      batches.reduce(0) { $0 + $1.tokens.count }
    )
  }

  /// Trains the gates on `examples` by `recipe`, in the order `seed` draws; returns the task
  /// loss of every step.
  @discardableResult
  public func train(
    on examples: [Example], tokenizer: Tokenizer, recipe: LayerGateRecipe, seed: UInt64,
    report: (StepReport) -> Void = { _ in }
  ) throws -> [Double] {
    try trainReportingTaskLoss(
      parameters: gateParameters(), examples: examples, settings: recipe.training, seed: seed,
      loss: { batch in
        let loss = self.loss(
          batch, tokenizer: tokenizer, balanceWeight: recipe.balanceWeight,
          lengthGroups: recipe.training.lengthGroups)
        return (loss.value, loss.task, loss.tokens)
      }, report: report)
  }
}
