// Exercise (README, "Exercise"): RSL's balance term for one site.
// Check it with: swift run lesson06-routing-specialization-loss --exercise

/// E · Σ_i p̄_i f_i over the tokens: p̄_i the mean probability of expert i, f_i the share of
/// the top-k slots it took. `probabilities[t]` is token t's dense row, `selected[t]` its k
/// experts. As written it returns what a perfectly even routing would give.
func balance(_ probabilities: [[Double]], _ selected: [[Int]]) -> Double {
  1
}
