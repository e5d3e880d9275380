// Exercise (README, "Exercise"): RMSNorm's input gradient from the derivation above.
// Check it with: swift run lesson03-tiny-transformer --exercise

/// dL/dx for one row y = x · r · w, r = 1 / √(mean(x²) + ε), given g = dL/dy. As written
/// it treats r as a constant, which forgets that r depends on every x_j.
func rmsNormInputGradient(
  _ x: [Double], _ weight: [Double], _ g: [Double], _ epsilon: Double
) -> [Double] {
  let n = Double(x.count)
  let r = 1 / ((x.map { $0 * $0 }.reduce(0, +) / n) + epsilon).squareRoot()
  return x.indices.map { j in g[j] * weight[j] * r }
}
