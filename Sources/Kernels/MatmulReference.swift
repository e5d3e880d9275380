/// The plain triple loop: `C = op(A) · op(B)` (or `C += …` with `accumulate`).
///
/// One multiply and one add per term, summed in order of `p`. This is the definition the
/// fast `matmul` is tested against; it is far too slow for training.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func matmulReference<T: KernelScalar>(
  _ a: UnsafePointer<T>, _ b: UnsafePointer<T>, into c: UnsafeMutablePointer<T>,
  _ shape: MatmulShape, accumulate: Bool = false
) {
  referenceLoop(a, b, c, shape, accumulate)
}

/// The fast `matmul`'s exact arithmetic, one element at a time: each element of C is one
/// chain of fused multiply-adds over `p` in increasing order, starting from zero, then
/// added to C when accumulating.
///
/// Every microkernel must give these bits on every shape, whatever its tile; a test holds
/// them to it. (The triple loop above rounds twice per term, so it differs in the last bits.)
@_specialize(where T == Float)
@_specialize(where T == Double)
public func matmulChain<T: KernelScalar>(
  _ a: UnsafePointer<T>, _ b: UnsafePointer<T>, into c: UnsafeMutablePointer<T>,
  _ shape: MatmulShape, accumulate: Bool = false
) {
  referenceLoop(a, b, c, shape, accumulate, fused: true)
}

private func referenceLoop<T: FloatingPoint>(
  _ a: UnsafePointer<T>, _ b: UnsafePointer<T>, _ c: UnsafeMutablePointer<T>,
  _ shape: MatmulShape, _ accumulate: Bool, fused: Bool = false
) {
  for item in 0..<shape.batch {
    let a = a + item * shape.batchStrideA
    let b = b + item * shape.batchStrideB
    let c = c + item * shape.batchStrideC
    for i in 0..<shape.m {
      for j in 0..<shape.n {
        var sum: T = 0
        for p in 0..<shape.k {
          let x = a[i * shape.aRowStride + p * shape.aColumnStride]
          let y = b[p * shape.bRowStride + j * shape.bColumnStride]
          if fused { sum.addProduct(x, y) } else { sum += x * y }
        }
        let index = i * shape.leadingDimensionC + j
        c[index] = accumulate ? c[index] + sum : sum
      }
    }
  }
}
