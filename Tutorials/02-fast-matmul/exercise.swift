// Exercise (README, "Exercise"): give this loop the bits of the fast kernel.
// Check it with: swift run lesson02-fast-matmul --exercise

/// C = A · B for row-major A (m × k) and B (k × n). As written it rounds twice per term
/// (the product, then the sum), so its last bits differ from `Kernels.matmul`'s.
func plainMultiply(_ a: [Float], _ b: [Float], _ m: Int, _ k: Int, _ n: Int) -> [Float] {
  var c = [Float](repeating: 0, count: m * n)
  for i in 0..<m {
    for j in 0..<n {
      var sum: Float = 0
      for p in 0..<k { sum += a[i * k + p] * b[p * n + j] }
      c[i * n + j] = sum
    }
  }
  return c
}
