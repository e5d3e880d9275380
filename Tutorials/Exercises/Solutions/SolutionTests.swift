import Exercises
import Testing

/// Each solution passes its lesson's check. (That each exercise as handed out does not is
/// held by `everyLessonsExerciseFailsItsCheckAsHandedOut` in the CLI tests.)
@Test func everySolutionPassesItsLessonsCheck() {
  let results = [
    checkSine(sine), checkFusedChain(plainMultiply), checkRMSNormBackward(rmsNormInputGradient),
    checkLoRAMerge(mergedWeight), checkRouterGradient(softRouterGradient), checkBalance(balance),
    checkTopKWeights(topKWeights), checkSpread(meanAndDeviation),
    checkSafeTensorsHeader(tensorRanges), checkScan(scanOneChannel),
  ]
  for result in results {
    #expect(result.passed, "\(result.name):\n\(result.lines.joined(separator: "\n"))")
  }
}
