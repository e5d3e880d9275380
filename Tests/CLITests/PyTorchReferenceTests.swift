import Foundation
import Testing

/// A tiny model, an adapter and one batch's logits, loss and adapter gradients computed by
/// PyTorch, transformers and PEFT in Float64 (`Tests/Fixtures/pytorch-reference/`, made by
/// its `make_reference.py`, which CI never runs).
private let fixture = packageRoot.appendingPathComponent("Tests/Fixtures/pytorch-reference")

/// `tinymixer debug-state --check` on the fixture's reference, with `adapter`.
private func check(adapter: URL) throws -> ProcessResult {
  try runProduct(
    "tinymixer",
    [
      "debug-state", "--check", fixture.appendingPathComponent("reference.safetensors").path,
      "--base", fixture.appendingPathComponent("model").path, "--adapter", adapter.path,
      "--datasets", datasetsFolder,
    ])
}

@Test func tinymixerAgreesWithPyTorchOnLogitsLossAndEveryAdapterGradient() throws {
  let run = try check(adapter: fixture.appendingPathComponent("adapter"))
  #expect(run.status == 0, "\(run.output)\(run.error)")
  #expect(run.output.contains("all 30 tensors of"), "\(run.output)")
  #expect(!run.output.contains("NOT OK"))
  for name in ["logits", "loss", "grad.model.layers.1.self_attn.q_proj.lora_A.weight"] {
    #expect(run.output.contains("OK      \(name): max |difference|"), "\(name)")
  }
}

@Test func theReferenceCheckFailsWhenTheAdapterScaleIsChanged() throws {
  // A planted change: lora_alpha 32 → 33 scales every update by 33/32.
  let adapter = FileManager.default.temporaryDirectory.appendingPathComponent(
    "planted-\(UUID().uuidString)")
  defer { try? FileManager.default.removeItem(at: adapter) }
  try FileManager.default.copyItem(at: fixture.appendingPathComponent("adapter"), to: adapter)
  let config = adapter.appendingPathComponent("adapter_config.json")
  let text = try String(contentsOf: config, encoding: .utf8)
  #expect(text.contains("\"lora_alpha\": 32.0"))
  try text.replacingOccurrences(of: "\"lora_alpha\": 32.0", with: "\"lora_alpha\": 33.0")
    .write(to: config, atomically: true, encoding: .utf8)
  let run = try check(adapter: adapter)
  #expect(run.status == 1)
  #expect(run.output.contains("NOT OK  logits") && run.output.contains("NOT OK  grad.model."))
  #expect(run.output.contains("tensors of") && run.output.contains("differ"))
}
