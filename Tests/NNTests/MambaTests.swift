import Autodiff
import Foundation
import NN
import SafeTensors
import Testing

/// The tiny Mamba of `Tests/Fixtures/mamba-reference` and the logits PyTorch's
/// transformers computed for it (its `make_reference.py`, which CI never runs).
let mambaFixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
  .deletingLastPathComponent().appendingPathComponent("Fixtures/mamba-reference")

@Test func aMambaModelDirectoryGivesTheLogitsTransformersComputes() throws {
  let model = try MambaForCausalLM.load(from: mambaFixture.appendingPathComponent("model"))
  let reference = try readSafeTensors(mambaFixture.appendingPathComponent("reference.safetensors"))
  let ids = try #require(reference.tensors["input_ids"]?.int64s).map(Int.init)
  let expected = try #require(reference.tensors["logits"]?.doubles)
  let logits = model.logits(ids, batch: 2, length: 9).scalars
  #expect(logits.count == expected.count)
  let largest = expected.map(abs).max()!
  let worst = zip(logits, expected).map { abs($0 - $1) }.max()!
  #expect(worst <= 1e-5 * largest, "differs by \(worst) (largest logit \(largest))")
}

@Test func aMambaSavedAndReadBackComputesTheSameBits() throws {
  let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
    "mamba-\(UUID().uuidString)")
  defer { try? FileManager.default.removeItem(at: folder) }
  for tied in [true, false] {
    let model = MambaForCausalLM(
      MambaConfiguration(
        vocabularySize: 11, hiddenSize: 8, layers: 2, stateSize: 3, convolutionKernel: 3,
        tieWordEmbeddings: tied), seed: 2)
    try model.save(to: folder)
    let again = try MambaForCausalLM.load(from: folder)
    let ids = (0..<12).map { $0 % 11 }
    #expect(
      again.logits(ids, batch: 2, length: 6).scalars
        == model.logits(ids, batch: 2, length: 6).scalars)
    #expect(again.namedParameters().map(\.name) == model.namedParameters().map(\.name))
  }
}
