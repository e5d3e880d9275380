import Foundation

/// The scalar types the kernels compute in: `Float` for training, `Double` for gradient
/// checks.
///
/// Every kernel is written once, generic over this protocol, and marked
/// `@_specialize(where T == Float)` and `@_specialize(where T == Double)`: the compiler
/// builds an optimized copy for each type inside this (always optimized) module, and the
/// generic entry point jumps to it. A caller in another module, even a debug build, that
/// calls a kernel with Float or Double therefore runs the specialized loop; without the
/// attribute it would run the generic one, about 100 times slower (measured with a
/// two-module package on the 2-core AMD EPYC Zen 4: 1.0 ms against 111 ms for 4M elements).
public protocol KernelScalar: BinaryFloatingPoint, SIMDScalar, Codable {
  /// `eˣ`.
  static func exp(_ x: Self) -> Self
  /// `eˣ` on 16 lanes: fast for Float (`fastExp`), the C library's for Double.
  static func exp(_ x: SIMD16<Self>) -> SIMD16<Self>
  /// The natural logarithm.
  static func log(_ x: Self) -> Self
  /// The hyperbolic tangent.
  static func tanh(_ x: Self) -> Self
  /// The error function.
  static func erf(_ x: Self) -> Self
  /// `xʸ`.
  static func pow(_ x: Self, _ y: Self) -> Self
  // The vectors of the matmul's register tiles (`MatmulKernel`), each a register wide
  // (16, 8 and 4 Floats; 8, 4 and 2 Doubles), so a Double tile is half as wide.
  /// A 512-bit vector (AVX-512).
  associatedtype Vector512: SIMD where Vector512.Scalar == Self
  /// A 256-bit vector (AVX2).
  associatedtype Vector256: SIMD where Vector256.Scalar == Self
  /// A 128-bit vector (NEON, SSE2).
  associatedtype Vector128: SIMD where Vector128.Scalar == Self
}

extension Float: KernelScalar {
  public typealias Vector512 = SIMD16<Float>
  public typealias Vector256 = SIMD8<Float>
  public typealias Vector128 = SIMD4<Float>
  public static func exp(_ x: Float) -> Float { Foundation.exp(x) }
  public static func log(_ x: Float) -> Float { Foundation.log(x) }
  public static func tanh(_ x: Float) -> Float { Foundation.tanh(x) }
  public static func erf(_ x: Float) -> Float { Foundation.erf(x) }
  public static func pow(_ x: Float, _ y: Float) -> Float { Foundation.pow(x, y) }
  @inline(__always) public static func exp(_ x: SIMD16<Float>) -> SIMD16<Float> { fastExp(x) }
}

extension Double: KernelScalar {
  public typealias Vector512 = SIMD8<Double>
  public typealias Vector256 = SIMD4<Double>
  public typealias Vector128 = SIMD2<Double>
  public static func exp(_ x: Double) -> Double { Foundation.exp(x) }
  public static func log(_ x: Double) -> Double { Foundation.log(x) }
  public static func tanh(_ x: Double) -> Double { Foundation.tanh(x) }
  public static func erf(_ x: Double) -> Double { Foundation.erf(x) }
  public static func pow(_ x: Double, _ y: Double) -> Double { Foundation.pow(x, y) }
  public static func exp(_ x: SIMD16<Double>) -> SIMD16<Double> {
    var result = x
    for lane in 0..<16 { result[lane] = Foundation.exp(x[lane]) }
    return result
  }
}

/// Splits `0..<count` into chunks of `grain` (the last may be shorter) and runs `body` on
/// each, on all threads when there is more than one chunk.
///
/// The chunks depend only on `count` and `grain`, never on the thread count, so a kernel
/// that writes each output from one chunk gives the same bits on any number of threads.
func forEachChunk(_ count: Int, grain: Int, _ body: (Range<Int>) -> Void) {
  let chunks = (count + grain - 1) / grain
  if chunks <= 1 {
    if count > 0 { body(0..<count) }
    return
  }
  parallelFor(chunks) { chunk in
    body(chunk * grain..<min(count, (chunk + 1) * grain))
  }
}

/// `forEachChunk` for row kernels whose results do not depend on where a chunk begins (each
/// row written from its own numbers alone): ⌈count ÷ grain⌉ chunks rounded up to an even
/// number, of equal sizes (differing by one at most), so that two threads share them evenly.
/// Cut by `forEachChunk`, a router's 2,048 rows made three chunks of 682 and one of 2, and
/// one thread computed two of the three: the bench mixture's weighting of the experts took
/// 1.27 ms of its step so, 1.01 in four chunks of 512, its top-k weights 0.64 and 0.55, and
/// the step 0.991 times the time (ten pairs in turns, eight faster; AVX2 build on the AMD
/// EPYC Zen 5, 2 threads; the native AVX-512 build's step did not change beyond the noise).
/// The chunks depend only on `count` and `grain`.
func forEachEvenChunk(_ count: Int, grain: Int, _ body: (Range<Int>) -> Void) {
  let chunks = (count + grain - 1) / grain
  let even = chunks > 1 ? chunks + chunks % 2 : chunks  // (one chunk: on this thread alone)
  parallelFor(even) { chunk in
    body(count * chunk / even..<count * (chunk + 1) / even)
  }
}

/// Elements per chunk for elementwise work: enough that a chunk outweighs handing it to a
/// thread (about a microsecond).
let elementwiseGrain = 1 << 15

/// Rows per chunk for row kernels: rows of `rowLength` elements, about `elementwiseGrain`
/// elements in all (at least one row), or `cost` times fewer where each element costs about
/// `cost` additions. An exponential costs about 32: with 32,768 numbers a chunk, a router's
/// 2,048 rows of 6 ran as one task on one thread, and the bench mixture's 32 softmaxes took
/// 2.5 to 2.6 ms of its step, forward and backward; at cost 32 (13 tasks), 1.6 to 1.7 (at 8,
/// 1.8; AMD EPYC Zen 3, 2 threads, `bench train-mixer --profile`, in turns). A division, or
/// a top-k's comparisons, about 8.
func rowsPerChunk(_ rowLength: Int, cost: Int = 1) -> Int {
  max(1, elementwiseGrain / max(1, rowLength * cost))
}
