import Autodiff

// Exercise (README, "Exercise"): the merged weight that makes the adapter free at inference.
// Check it with: swift run lesson04-lora --exercise

/// The weight of a plain Linear that computes what `weight` with the LoRA (A: rank ×
/// inputs, B: outputs × rank, scale s) attached computes. As written it forgets the
/// adapter.
func mergedWeight(_ weight: Tensor, _ a: Tensor, _ b: Tensor, _ scale: Double) -> Tensor {
  weight
}
