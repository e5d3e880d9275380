import Experiments
import Random

/// Lesson 08: the `mean ± deviation` the report prints over seeds. Checked against the
/// report's own `Report.meanAndDeviation`.
public func checkSpread(_ meanAndDeviation: (_ values: [Double]) -> (Double, Double))
  -> ExerciseResult
{
  var result = ExerciseResult("the report's mean ± deviation over seeds (lesson 08)")
  var generator = SeededGenerator(seed: 8)
  for count in [2, 3, 10] {
    let values = (0..<count).map { _ in 0.9 + 0.05 * generator.nextNormal() }
    let (mean, deviation) = meanAndDeviation(values)
    let expected = Report.meanAndDeviation(values)
    result.expect(
      abs(mean - expected.mean) < 1e-12 && abs(deviation - expected.deviation!) < 1e-12,
      "\(count) seeds: yours \(String(format: "%.4f ± %.4f", mean, deviation)), the report's \(String(format: "%.4f ± %.4f", expected.mean, expected.deviation!))"
    )
  }
  return result
}
