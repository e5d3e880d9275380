// Exercise (README, "Exercise"): the soft router's gradient row, by hand.
// Check it with: swift run lesson05-routing --exercise

/// dL/dz_e for a soft router, w = p = softmax(z), given p and each expert's contribution
/// c_e = ⟨g, expert e's output⟩ (so dL/dp_e = c_e). As written it stops at dL/dp and
/// forgets the softmax in between.
func softRouterGradient(_ p: [Double], _ c: [Double]) -> [Double] {
  c
}
