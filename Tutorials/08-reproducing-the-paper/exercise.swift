// Exercise (README, "Exercise"): the report's "mean ± deviation" over seeds.
// Check it with: swift run lesson08-reproducing-the-paper --exercise

/// The mean of `values` and their standard deviation as the report computes it. As
/// written it divides by the number of values, which is not what the report does.
func meanAndDeviation(_ values: [Double]) -> (Double, Double) {
  let n = Double(values.count)
  let mean = values.reduce(0, +) / n
  let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / n
  return (mean, variance.squareRoot())
}
