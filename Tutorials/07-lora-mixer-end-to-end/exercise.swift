import Foundation

// Exercise (README, "Exercise"): the weights one token's experts are mixed by at inference.
// Check it with: swift run lesson07-lora-mixer-end-to-end --exercise

/// From the router's logits: p = softmax(logits), kept on the k largest (ties to the lower
/// index), renormalised to sum to 1. As written it keeps every expert.
func topKWeights(_ logits: [Double], _ k: Int) -> [Double] {
  let largest = logits.max()!
  let e = logits.map { Foundation.exp($0 - largest) }
  let total = e.reduce(0, +)
  return e.map { $0 / total }
}
