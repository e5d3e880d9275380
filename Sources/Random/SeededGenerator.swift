import Foundation

/// A seeded pseudo-random generator (xoshiro256**, seeded through SplitMix64) whose
/// numbers are the same on every platform and Swift version, so a seed always gives the
/// same initial weights, data order and samples.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
  private var state: (UInt64, UInt64, UInt64, UInt64)

  /// A generator whose whole sequence is determined by `seed`.
  public init(seed: UInt64) {
    var mix = seed
    func splitMix() -> UInt64 {
      mix &+= 0x9E37_79B9_7F4A_7C15
      var z = mix
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
    state = (splitMix(), splitMix(), splitMix(), splitMix())
  }

  /// The next 64 random bits.
  public mutating func next() -> UInt64 {
    let result = rotate(state.1 &* 5, 7) &* 9
    let t = state.1 << 17
    state.2 ^= state.0
    state.3 ^= state.1
    state.1 ^= state.2
    state.0 ^= state.3
    state.2 ^= t
    state.3 = rotate(state.3, 45)
    return result
  }

  private func rotate(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

  /// A uniform number in `[0, 1)` with 53 random bits.
  public mutating func nextUniform() -> Double { Double(next() >> 11) * 0x1p-53 }

  /// A standard normal number (Box–Muller).
  public mutating func nextNormal() -> Double {
    let radius = (-2 * Foundation.log(1 - nextUniform())).squareRoot()
    return radius * Foundation.cos(2 * Double.pi * nextUniform())
  }

  /// A uniform integer in `0..<bound`, without modulo bias.
  public mutating func nextInt(below bound: Int) -> Int {
    precondition(bound > 0, "nextInt(below: \(bound))")
    let limit = UInt64.max - UInt64.max % UInt64(bound)
    while true {
      let x = next()
      if x < limit { return Int(x % UInt64(bound)) }
    }
  }

  /// The elements of `array` in a random order (Fisher–Yates).
  public mutating func shuffled<T>(_ array: [T]) -> [T] {
    var result = array
    for i in stride(from: result.count - 1, to: 0, by: -1) {
      result.swapAt(i, nextInt(below: i + 1))
    }
    return result
  }
}
