import Autodiff
import NN
import Random
import ToyTasks
import Training

/// A frozen base model whose chosen projections are routed sites over a bank of LoRA
/// experts (Tutorials/the-paper.md §1-3): one router per site, every site sharing one
/// `RoutingState`. Its forward pass takes the routing phase and returns every site's
/// routing with the logits; the greedy decoding of `accuracy` runs the plain model, whose
/// sites route as at inference.
public final class Mixture {
  /// The model, with a `RoutedSite` as the adapter of every site.
  public let model: any CausalLanguageModel
  /// The experts' names, in router-row order.
  public let expertNames: [String]
  /// The sites, by layer path, in the model's order.
  public let sites: [(path: String, site: RoutedSite)]
  /// The routing settings, and the running forward pass.
  public let routing: RoutingState
  /// Each site's position in `sites`.
  let siteIndex: [ObjectIdentifier: Int]
  /// The Linear of each site.
  let layers: [Linear]

  /// Routes `model`'s Linears named in `targets` over `experts` (each a name and its adapters
  /// by layer path). A layer where no expert has weights stays plain; an expert absent at a
  /// site is left out of that site's softmax. Every other adapter is detached, the model and
  /// the experts are frozen, and the routers (initialised from `seed`) train.
  public init(
    model: any CausalLanguageModel, experts: [(name: String, adapters: [String: LoRA])],
    targets: [String] = allProjections, settings: RoutingSettings = RoutingSettings(),
    seed: UInt64
  ) {
    precondition(!experts.isEmpty, "a mixture needs experts")
    self.model = model
    expertNames = experts.map(\.name)
    routing = RoutingState(settings: settings)
    model.detachAdapters()
    model.setTrainable(false)
    var generator = SeededGenerator(seed: seed)
    var sites: [(String, RoutedSite)] = []
    var layers: [Linear] = []
    for (path, linear) in model.linearLayers(named: targets) {
      let bank = experts.map { $0.adapters[path] }
      guard bank.contains(where: { $0 != nil }) else { continue }
      let site = RoutedSite(
        experts: bank, names: expertNames,
        router: Router(
          experts: experts.count, inputs: linear.inputs, present: bank.map { $0 != nil },
          dtype: linear.weight.dtype, generator: &generator),
        outputs: linear.outputs, state: routing)
      for expert in bank { expert?.setTrainable(false) }
      linear.adapter = site
      sites.append((path, site))
      layers.append(linear)
    }
    self.sites = sites
    self.layers = layers
    siteIndex = Dictionary(
      uniqueKeysWithValues: sites.enumerated().map { (ObjectIdentifier($1.1), $0) })
  }

  /// The routers, by site.
  public var routers: [Router] { sites.map(\.site.router) }

  /// The routing settings every site uses.
  public var settings: RoutingSettings {
    get { routing.settings }
    set { routing.settings = newValue }
  }

  /// Every router's weight, named by its path in the model.
  public func routerParameters() -> [(name: String, tensor: Tensor)] {
    sites.map { ("\($0.path).router.weight", $0.site.router.weight) }
  }

  /// Every expert's factors, named by their path in the model.
  public func expertParameters() -> [(name: String, tensor: Tensor)] {
    sites.flatMap { path, site in
      zip(site.names, site.experts).flatMap { name, expert in
        (expert?.namedParameters() ?? []).map { ("\(path).experts.\(name).\($0.name)", $0.tensor) }
      }
    }
  }

  /// The parameters a mixture has beyond the frozen base: routers and experts.
  public var addedParameterCount: Int {
    (routerParameters() + expertParameters()).reduce(0) { $0 + $1.tensor.count }
  }

  /// Positions of `batch` that hold a real token, not padding: the tokens RSL averages over.
  public static func realTokens(_ batch: TokenBatch) -> [Int] {
    batch.tokens.indices.filter { batch.tokens[$0] != Tokenizer.pad }
  }

  /// The logits of `tokens` (`batch` rows of `length`) with every site routing by `phase`,
  /// and each site's routing, in the order the sites ran.
  public func forward(_ tokens: [Int], batch: Int, length: Int, phase: RoutingPhase) -> (
    logits: Tensor, routings: [SiteRecord]
  ) {
    let (logits, routings) = routing.run(phase) {
      model.logits(tokens, batch: batch, length: length)
    }
    return (logits, routings)
  }

  /// What the routing losses read of each site's routing: the routing and the site's count
  /// of present experts.
  public static func lossInputs(_ routings: [SiteRecord]) -> [(
    routing: SiteRouting, experts: Int
  )] {
    routings.map { ($0.routing, $0.site.presentCount) }
  }

  /// The loss of `examples`, routed by `phase`: next-token cross-entropy on the answers,
  /// plus the routing loss over the real tokens, plus the preservation penalty if given.
  /// The examples run as up to `lengthGroups` groups of similar length
  /// (`Tokenizer.answerBatches`); the routing loss sees the whole batch at once, every
  /// site's routing of the groups joined, real tokens only, and those joined routings are
  /// returned with the loss.
  public func loss(
    _ examples: [Example], tokenizer: Tokenizer, routingLoss settings: RoutingLossSettings,
    preservation: (Preservation, beta: Double)? = nil, lengthGroups: Int = 1,
    phase: RoutingPhase = .training
  ) -> MixtureLoss {
    let batches = tokenizer.answerBatches(examples, groups: lengthGroups)
    let (task, records) = routing.run(phase) { model.weightedLoss(batches) }
    let (routings, sequences) = joinRealTokens(records, of: batches)
    let routingLoss = LoRAMixer.routingLoss(
      Self.lossInputs(routings), tokens: nil, sequences: sequences, settings: settings)
    var total = task + routingLoss.loss
    if let (anchors, beta) = preservation { total = total + anchors.penalty(beta: beta) }
    return MixtureLoss(
      value: total, task: task.item, routing: routingLoss, routings: routings,
      tokens: batches.reduce(0) { $0 + $1.tokens.count })
  }

  /// One routing per site of the real tokens of `batches`, batch after batch, from the
  /// `records` of running them one after another (each site once per batch). Returns them
  /// with the sequence of each of their rows, numbered across the batches.
  func joinRealTokens(_ records: [SiteRecord], of batches: [TokenBatch]) -> (
    routings: [SiteRecord], sequences: [Int]
  ) {
    let perBatch = records.count / max(1, batches.count)
    precondition(perBatch * batches.count == records.count, "a site did not record every batch")
    let rows = batches.map(Self.realTokens)
    var sequences: [Int] = []
    var first = 0
    for (batch, real) in zip(batches, rows) {
      sequences += real.map { first + $0 / batch.length }
      first += batch.batch
    }
    let joined = (0..<perBatch).map { index in
      let site = records[index].site
      let parts = rows.indices.map { part in
        let record = records[part * perBatch + index]
        precondition(record.site === site, "the sites recorded in a different order")
        return (record.routing, rows[part])
      }
      return (site, SiteRouting.joined(parts))
    }
    return (joined, sequences)
  }

  /// `body`'s result with expert `index` alone at every site (its plain LoRA, nothing
  /// where it is absent), the routers bypassed: that expert with oracle routing.
  public func usingOnly<Result>(expert index: Int, _ body: () throws -> Result) rethrows -> Result {
    for (layer, (_, site)) in zip(layers, sites) { layer.adapter = site.experts[index] }
    defer { for (layer, (_, site)) in zip(layers, sites) { layer.adapter = site } }
    return try body()
  }

  /// `body`'s result with every site mixing its experts by fixed weights, the routers
  /// bypassed: `weights(layer, position)` gives the weight of each expert (in router-row
  /// order) at the sites of that decoder layer for the token at that position of its
  /// sequence, whatever the token. Experts absent at a site are skipped whatever their
  /// weight. This measures how much blending the experts tolerate, with no router to blame.
  public func blending<Result>(
    _ weights: @escaping (_ layer: Int, _ position: Int) -> [Double], _ body: () throws -> Result
  ) rethrows -> Result {
    for (layer, (path, site)) in zip(layers, sites) {
      let decoderLayer = Self.decoderLayer(path)
      let absent = site.experts.map { $0 == nil }
      layer.adapter = FixedBlend(site: site) { position in
        let row = weights(decoderLayer, position)
        precondition(row.count == absent.count, "one weight per expert")
        return zip(row, absent).map { $1 ? 0 : $0 }
      }
    }
    defer { for (layer, (_, site)) in zip(layers, sites) { layer.adapter = site } }
    return try body()
  }

  /// The decoder layer a site's path names (`model.layers.2.self_attn.q_proj` is 2).
  public static func decoderLayer(_ path: String) -> Int {
    let parts = path.split(separator: ".")
    guard let index = parts.firstIndex(of: "layers"), index + 1 < parts.count,
      let layer = Int(parts[index + 1])
    else { preconditionFailure("no layer number in '\(path)'") }
    return layer
  }

  /// Exact-match accuracy on `examples`, routing as at inference (the plain model's greedy
  /// decoding: outside a forward pass of the mixture its sites route so).
  public func accuracy(_ examples: [Example], tokenizer: Tokenizer) -> Double {
    model.accuracy(examples, tokenizer: tokenizer)
  }

  /// How `examples` (prompt and answer, teacher-forced) are routed at inference, counted
  /// over their real tokens at every site.
  public func tally(_ examples: [Example], tokenizer: Tokenizer, batchSize: Int = 64)
    -> RoutingTally
  {
    var tally = RoutingTally(self)
    for start in stride(from: 0, to: examples.count, by: batchSize) {
      let batch = tokenizer.answerBatch(
        Array(examples[start..<min(start + batchSize, examples.count)]))
      let routings = forward(
        batch.tokens, batch: batch.batch, length: batch.length, phase: .inference
      ).routings
      tally.add(routings, of: self, tokens: Self.realTokens(batch))
    }
    return tally
  }
}

/// A routed site with its router bypassed: each token mixes the experts by weights fixed
/// for its position in the sequence.
final class FixedBlend: Module, LinearAdapter {
  let site: RoutedSite
  let weights: (Int) -> [Double]

  init(site: RoutedSite, weights: @escaping (Int) -> [Double]) {
    self.site = site
    self.weights = weights
  }

  /// For `x` of shape `[batch, length, inputs]` (a matrix is one sequence).
  func delta(_ x: Tensor) -> Tensor {
    let tokens = x.count / x.shape.last!
    let length = x.rank == 3 ? x.shape[1] : tokens
    let rows = (0..<length).map(weights)
    let grid = Tensor(
      shape: [tokens, site.experts.count],
      scalars: Array((0..<tokens).map { rows[$0 % length] }.joined()), dtype: x.dtype)
    return site.delta(x, weights: grid)
  }
}

/// A mixture's loss on one batch, with its parts.
public struct MixtureLoss {
  /// The total, on the tape.
  public var value: Tensor
  /// The task's cross-entropy.
  public var task: Double
  /// The routing loss and its terms.
  public var routing: RoutingLossValue
  /// Each site's routing of the batch's real tokens, the groups joined.
  public var routings: [SiteRecord]
  /// Positions computed, padding included.
  public var tokens: Int
}
