import Autodiff
import NN

extension GradientCheckCase {
  /// LoRA: a wrapped Linear with respect to its input and both factors, and a whole tiny
  /// model with LoRA on every attention projection with respect to every adapter weight.
  public static var lora: [GradientCheckCase] {
    [
      .on(
        "lora linear (frozen base, A, B)",
        [([2, 3, 5], .signed), ([2, 5], .signed), ([4, 2], .signed)]
      ) { t in
        let linear = Linear(weight: TestValues.signed.tensor([4, 5], seed: 9))
        linear.weight.requiresGradient = false
        linear.adapter = LoRA(down: Linear(weight: t[1]), up: Linear(weight: t[2]), scale: 1.5)
        return linear(t[0])
      },
      GradientCheckCase(
        "whole model with lora (adapters only)",
        parameterShapes: [[2, 8], [8, 2]].repeated(4 * 2),
        method: .randomProjections(count: 2)
      ) {
        let model = LlamaForCausalLM(tinyConfiguration(tied: false), seed: 3, dtype: .float64)
        let adapters = attachLoRA(to: model, rank: 2, alpha: 3, seed: 4)
        for (_, lora) in adapters {
          // B away from zero, so that A's gradient is not zero.
          lora.up.weight.assign(TestValues.signed.tensor(lora.up.weight.shape, seed: 5).storage)
        }
        return (model.trainableParameters().map(\.tensor), { tinyLoss(model) })
      },
    ]
  }
}

extension Array {
  /// This array's elements, `count` times over.
  fileprivate func repeated(_ count: Int) -> [Element] { (0..<count).flatMap { _ in self } }
}
