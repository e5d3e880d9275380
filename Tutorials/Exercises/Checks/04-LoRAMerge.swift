import Autodiff
import LoRAMixer
import NN
import Random

/// Lesson 04: the merged weight W + s·B·A, checked by what matters: the plain Linear with
/// it computes what the Linear with the adapter attached computes.
public func checkLoRAMerge(
  _ merged: (_ weight: Tensor, _ a: Tensor, _ b: Tensor, _ scale: Double) -> Tensor
) -> ExerciseResult {
  var result = ExerciseResult("merging a LoRA into its layer (lesson 04)")
  var generator = SeededGenerator(seed: 4)
  let (inputs, outputs, rank) = (8, 6, 2)
  let weight = Tensor.normal([outputs, inputs], dtype: .float64, generator: &generator)
  let a = Tensor.normal([rank, inputs], dtype: .float64, generator: &generator)
  let b = Tensor.normal([outputs, rank], dtype: .float64, generator: &generator)
  let x = Tensor.normal([3, inputs], dtype: .float64, generator: &generator)
  let adapted = Linear(weight: weight.detached())
  adapted.adapter = LoRA(a: Linear(weight: a.detached()), b: Linear(weight: b.detached()), scale: 2)
  let yours = merged(weight, a, b, 2)
  guard yours.shape == weight.shape else {
    result.expect(false, "the merged weight is \(yours.shape), the layer's \(weight.shape)")
    return result
  }
  let error = largestDifference(Linear(weight: yours).callAsFunction(x).scalars, adapted(x).scalars)
  result.expect(
    error < 1e-12,
    "outputs of the merged layer against the adapted one: largest difference \(scientific(error))")
  return result
}
