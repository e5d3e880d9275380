import Autodiff
import Foundation

/// A language model that predicts every next token of its input: the Llama transformer and
/// the Mamba state-space model. Training, LoRA experts and the mixture work on either.
public protocol CausalLanguageModel: Module {
  /// Tokens in the vocabulary.
  var vocabularySize: Int { get }
  /// The longest sequence the model reads, in tokens.
  var contextLength: Int { get }
  /// Layers (decoder layers, or Mamba blocks), numbered in parameter paths `layers.N`.
  var layerCount: Int { get }
  /// Next-token logits, `[batch, length, vocabulary]`, for `tokens` given row by row.
  func logits(_ tokens: [Int], batch: Int, length: Int) -> Tensor
  /// Writes the model as a Hugging Face model directory (`config.json`, `model.safetensors`).
  func save(to directory: URL, tokenIds: [String: Int], metadata: [String: String]) throws
}

/// The model in the Hugging Face model directory `directory`: a Mamba when its
/// `config.json` says `model_type: "mamba"`, else a Llama (which checks the type itself).
public func loadCausalLanguageModel(from directory: URL, dtype: DType = .float32) throws
  -> any CausalLanguageModel
{
  let config = try readJSON(
    directory.appendingPathComponent("config.json"), in: directory, kind: "a model directory")
  if config["model_type"]?.string == "mamba" {
    return try MambaForCausalLM.load(from: directory, dtype: dtype)
  }
  return try LlamaForCausalLM.load(from: directory, dtype: dtype)
}

/// The logits of the final hidden states: `head`'s, or, when the head is tied to the token
/// embedding (nil), `hidden · Eᵀ`. Both models end this way.
func outputLogits(_ hidden: Tensor, head: Linear?, tiedTo embedding: Embedding) -> Tensor {
  if let head { return head(hidden) }
  return matmul(hidden, embedding.weight, transposeB: true)
}

extension CausalLanguageModel {
  /// The mean cross-entropy of the next-token predictions at the positions `mask` marks:
  /// position t is scored on predicting `targets[t]`.
  public func loss(tokens: [Int], targets: [Int], mask: [Bool], batch: Int, length: Int) -> Tensor {
    crossEntropy(
      logits: logits(tokens, batch: batch, length: length).reshaped([-1, vocabularySize]),
      targets: targets, mask: mask)
  }
}

extension LlamaForCausalLM: CausalLanguageModel {
  /// Tokens in the vocabulary.
  public var vocabularySize: Int { configuration.vocabularySize }
  /// `max_position_embeddings`.
  public var contextLength: Int { configuration.contextLength }
  /// Decoder layers.
  public var layerCount: Int { configuration.layers }
}

extension MambaForCausalLM: CausalLanguageModel {
  /// Tokens in the vocabulary.
  public var vocabularySize: Int { configuration.vocabularySize }
  /// The longest sequence the tools feed it (a Mamba itself has no limit).
  public var contextLength: Int { configuration.contextLength }
  /// Mamba blocks.
  public var layerCount: Int { configuration.layers }
}
