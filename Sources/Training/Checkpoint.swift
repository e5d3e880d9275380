import Autodiff
import Foundation
import NN
import SafeTensors

/// Everything a training run needs to continue exactly where it stopped: the step, the
/// parameters, AdamW's moments and step count, the losses so far and the clipping count.
/// The data order needs no state of its own: batch `step` is a function of the seed and the
/// step (`BatchOrder`). Resuming from a checkpoint gives the same weights, bit for bit, as
/// never stopping.
public struct TrainingCheckpoint: Equatable {
  /// Steps completed.
  public var step: Int
  /// Steps whose gradients were clipped so far.
  public var clippedSteps: Int
  /// The loss of every step so far.
  public var losses: [Double]
  /// Each parameter's values, by name.
  public var parameters: [String: [Float]]
  /// AdamW's first and second moments, by parameter name.
  public var firstMoments: [String: [Float]], secondMoments: [String: [Float]]

  /// The file name inside a checkpoint folder.
  public static let fileName = "checkpoint.safetensors"

  /// Writes the checkpoint as one safetensors file, atomically.
  public func save(to url: URL) throws {
    var file = SafeTensorsFile(metadata: [
      "format": "tinymixer-checkpoint", "step": String(step), "clipped_steps": String(clippedSteps),
    ])
    file.tensors["losses"] = SafeTensor(shape: [losses.count], doubles: losses)
    for (prefix, values) in [
      ("parameter.", parameters), ("adam.m.", firstMoments), ("adam.v.", secondMoments),
    ] {
      for (name, floats) in values {
        file.tensors[prefix + name] = SafeTensor(shape: [floats.count], floats: floats)
      }
    }
    try file.write(to: url)
  }

  /// Reads a checkpoint written by `save(to:)`.
  public static func load(from url: URL) throws -> TrainingCheckpoint {
    let file = try readSafeTensors(url)
    guard file.metadata["format"] == "tinymixer-checkpoint",
      let step = file.metadata["step"].flatMap({ Int($0) }),
      let clipped = file.metadata["clipped_steps"].flatMap({ Int($0) }),
      let losses = file.tensors["losses"]?.doubles, losses.count == step
    else {
      throw ModelFileError(url.path, "not a tinymixer training checkpoint")
    }
    var checkpoint = TrainingCheckpoint(
      step: step, clippedSteps: clipped, losses: losses, parameters: [:], firstMoments: [:],
      secondMoments: [:])
    for (key, tensor) in file.tensors where key != "losses" {
      guard let floats = tensor.floats else {
        throw ModelFileError(url.path, "'\(key)' is not floating point")
      }
      for (prefix, path) in [
        ("parameter.", \TrainingCheckpoint.parameters), ("adam.m.", \.firstMoments),
        ("adam.v.", \.secondMoments),
      ] where key.hasPrefix(prefix) {
        checkpoint[keyPath: path][String(key.dropFirst(prefix.count))] = floats
      }
    }
    return checkpoint
  }

  /// The state of a run after `step` steps.
  init(
    step: Int, clippedSteps: Int, losses: [Double],
    parameters: [(name: String, tensor: Tensor)], optimizer: AdamW
  ) {
    self.step = step
    self.clippedSteps = clippedSteps
    self.losses = losses
    let names = parameters.map(\.name)
    self.parameters = Dictionary(
      uniqueKeysWithValues: parameters.map { ($0.name, $0.tensor.floats) })
    firstMoments = Dictionary(uniqueKeysWithValues: zip(names, optimizer.firstMoments))
    secondMoments = Dictionary(uniqueKeysWithValues: zip(names, optimizer.secondMoments))
  }

  init(
    step: Int, clippedSteps: Int, losses: [Double], parameters: [String: [Float]],
    firstMoments: [String: [Float]], secondMoments: [String: [Float]]
  ) {
    (self.step, self.clippedSteps, self.losses) = (step, clippedSteps, losses)
    (self.parameters, self.firstMoments, self.secondMoments) = (
      parameters, firstMoments, secondMoments
    )
  }

  /// Puts the parameters' values and the optimizer's state back; every parameter must be
  /// in the checkpoint with its size.
  func restore(_ parameters: [(name: String, tensor: Tensor)], into optimizer: AdamW, file: URL)
    throws
  {
    for (name, tensor) in parameters {
      guard let values = self.parameters[name], values.count == tensor.count,
        firstMoments[name]?.count == tensor.count, secondMoments[name]?.count == tensor.count
      else {
        throw ModelFileError(
          file.path, "has no state for '\(name)' \(tensor.shape), or another size")
      }
      tensor.assign(.float32(values))
    }
    let names = parameters.map(\.name)
    optimizer.restore(
      step: step, firstMoments: names.map { firstMoments[$0]! },
      secondMoments: names.map { secondMoments[$0]! })
  }
}

/// Where a run saves its state, how often, and when it should stop early.
public struct CheckpointPolicy {
  /// The checkpoint file (rewritten atomically each time).
  public var file: URL
  /// Save after every this many steps (and when stopping early).
  public var every: Int
  /// Resume from `file` if true (it must exist).
  public var resume: Bool
  /// Asked after every step; when it answers true, the run saves and stops with
  /// `TrainingError.interrupted` (Ctrl-C sets it).
  public var shouldStop: () -> Bool

  /// A policy.
  public init(
    file: URL, every: Int, resume: Bool = false, shouldStop: @escaping () -> Bool = { false }
  ) {
    self.file = file
    self.every = every
    self.resume = resume
    self.shouldStop = shouldStop
  }
}
