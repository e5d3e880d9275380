/// Whether the combination `values` is held out of training: a fixed pseudo-random choice
/// of about one combination in `oneIn`, unrelated to the answer (a Fibonacci hash of the
/// values, read from its high bits so no parity or residue of the values leaks into it).
func isHeldOut(_ values: [Int], oneIn: Int) -> Bool {
  var code: UInt32 = 0
  for value in values { code = code &* 31 &+ UInt32(truncatingIfNeeded: value + 16) }
  return Int((code &* 2_654_435_761) >> 16) % oneIn == 0
}
