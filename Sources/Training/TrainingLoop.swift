import Autodiff
import Dispatch
import NN
import ToyTasks

/// The settings of one training run.
public struct TrainingSettings: Equatable, Hashable, Sendable {
  /// Optimizer steps. Changing them moves a warmup left at its default (a twentieth of the
  /// steps) along with them, so `--steps 2000` warms up for 100 steps, not the default's 50.
  public var steps: Int {
    didSet {
      if warmupSteps == Self.defaultWarmup(oldValue) { warmupSteps = Self.defaultWarmup(steps) }
    }
  }
  /// Examples per step.
  public var batchSize: Int
  /// The peak learning rate, reached after the warmup.
  public var learningRate: Double
  /// Steps of linear warmup (at most a quarter of `steps`; see `warmupCosineLearningRate`).
  public var warmupSteps: Int
  /// The learning rate at the end of the cosine decay, as a fraction of the peak.
  public var finalLearningRateFraction: Double
  /// AdamW's decoupled weight decay (matrices only).
  public var weightDecay: Double
  /// Gradients are scaled down to at most this global norm.
  public var clipNorm: Double
  /// The seed of the data order.
  public var seed: UInt64
  /// Each batch runs as up to this many groups of similar length (`answerBatches`): the same
  /// loss with less padding, worth it where the tasks of a batch differ in length. 1 runs
  /// every batch padded as one.
  public var lengthGroups: Int

  /// Settings with the defaults used for toy tasks.
  public init(
    steps: Int, batchSize: Int = 32, learningRate: Double, warmupSteps: Int? = nil,
    finalLearningRateFraction: Double = 0.1, weightDecay: Double = 0, clipNorm: Double = 1,
    seed: UInt64 = 0, lengthGroups: Int = 1
  ) {
    self.steps = steps
    self.batchSize = batchSize
    self.learningRate = learningRate
    self.warmupSteps = warmupSteps ?? Self.defaultWarmup(steps)
    self.finalLearningRateFraction = finalLearningRateFraction
    self.weightDecay = weightDecay
    self.clipNorm = clipNorm
    self.seed = seed
    self.lengthGroups = lengthGroups
  }

  /// A twentieth of `steps`, at least one.
  static func defaultWarmup(_ steps: Int) -> Int { max(1, steps / 20) }

  /// The learning rate at `step`.
  public func learningRate(at step: Int) -> Double {
    warmupCosineLearningRate(
      step: step, totalSteps: steps, warmupSteps: warmupSteps, peak: learningRate,
      minimum: learningRate * finalLearningRateFraction)
  }
}

/// What one training step did.
public struct StepReport: Sendable {
  /// The step just taken, from 1.
  public var step: Int
  /// All steps of the run.
  public var steps: Int
  /// The loss before the step.
  public var loss: Double
  /// The learning rate used.
  public var learningRate: Double
  /// The gradients' global norm before clipping.
  public var gradientNorm: Double
  /// Steps so far whose gradients were clipped.
  public var clippedSteps: Int
  /// Tokens in the step's batch (padding included).
  public var tokens: Int
  /// Seconds since the run started.
  public var elapsed: Double
  /// The step's time by operation, when its tape profiled them (`Tape.profilesOperations`).
  public var profile: OperationProfile? = nil
}

/// Why training stopped before its last step.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
  /// The loss or a gradient was NaN or infinite; `location` says where it first appeared.
  case nonFinite(step: Int, what: String, location: String? = nil)
  /// The run was asked to stop (Ctrl-C) after `step` steps and saved its state in `file`.
  case interrupted(step: Int, file: String)

  public var description: String {
    switch self {
    case .nonFinite(let step, let what, let location):
      "training stopped at step \(step): \(what) is not finite"
        + (location.map { "; it first appears in the \($0)" } ?? "")
    case .interrupted(let step, let file):
      "interrupted after step \(step); the state is saved in \(file): run the same command with --resume to continue"
    }
  }
}

/// Trains `parameters` with AdamW to lower `loss(batch)` on batches of `examples`
/// (`settings.batchSize` each, in the order `settings.seed` shuffles), calling `report`
/// after every step. `loss` builds the scalar loss of a batch of examples (on the active
/// tape). With a `checkpoint` policy the state is saved periodically (and the run can resume
/// from it, or stop early when asked). Returns the loss of every step.
public func train(
  parameters: [(name: String, tensor: Tensor)], examples: [Example], settings: TrainingSettings,
  checkpoint: CheckpointPolicy? = nil,
  loss: ([Example]) -> (value: Tensor, tokens: Int), report: (StepReport) -> Void = { _ in }
) throws -> [Double] {
  let order = BatchOrder(examples, batchSize: settings.batchSize, seed: settings.seed)
  let optimizer = AdamW(parameters: parameters.map(\.tensor), weightDecay: settings.weightDecay)
  let start = DispatchTime.now().uptimeNanoseconds
  var losses: [Double] = []
  var clipped = 0
  var first = 0
  if let checkpoint, checkpoint.resume {
    let saved = try TrainingCheckpoint.load(from: checkpoint.file)
    try saved.restore(parameters, into: optimizer, file: checkpoint.file)
    (first, clipped, losses) = (saved.step, saved.clippedSteps, saved.losses)
  }
  func save(after step: Int) throws {
    guard let checkpoint else { return }
    try TrainingCheckpoint(
      step: step, clippedSteps: clipped, losses: losses, parameters: parameters,
      optimizer: optimizer
    ).save(to: checkpoint.file)
  }
  for step in first..<settings.steps {
    let tape = Tape()
    var tokens = 0
    let value = tape.record { () -> Tensor in
      let (value, count) = loss(order.batch(step))
      tokens = count
      return value
    }
    guard value.item.isFinite else {
      throw TrainingError.nonFinite(
        step: step + 1, what: "the loss", location: tape.locateNonFinite(from: value))
    }
    let found = tape.gradients(of: value)
    let gradients = parameters.map {
      found[$0.tensor] ?? Tensor.zeros($0.tensor.shape, dtype: $0.tensor.dtype)
    }
    let norm = clipGradients(gradients, maxNorm: settings.clipNorm)
    guard norm.isFinite else {
      let bad =
        zip(parameters, gradients).first { !$1.scalars.allSatisfy(\.isFinite) }?.0.name
        ?? "a gradient"
      throw TrainingError.nonFinite(
        step: step + 1, what: "the gradient of \(bad)", location: tape.locateNonFinite(from: value))
    }
    if norm > settings.clipNorm { clipped += 1 }
    let rate = settings.learningRate(at: step)
    optimizer.update(gradients, learningRate: rate)
    losses.append(value.item)
    report(
      StepReport(
        step: step + 1, steps: settings.steps, loss: value.item, learningRate: rate,
        gradientNorm: norm,
        clippedSteps: clipped, tokens: tokens,
        elapsed: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9, profile: tape.profile
      ))
    if let checkpoint, step + 1 < settings.steps {
      if checkpoint.shouldStop() {
        try save(after: step + 1)
        throw TrainingError.interrupted(step: step + 1, file: checkpoint.file.path)
      }
      if (step + 1) % checkpoint.every == 0 { try save(after: step + 1) }
    }
  }
  return losses
}
