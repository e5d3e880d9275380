/// The register tiles of the fast matmul, one per instruction set.
///
/// A microkernel computes a tile of `rows` rows of C by two SIMD vectors of columns over the
/// whole inner dimension, with every accumulator in a register. How big a tile fits depends
/// on the register file: per step of `p` the tile needs `2 · rows` accumulators, the two
/// vectors of B and one broadcast number of A. A tile that needs more registers than the
/// CPU has spills accumulators to the stack and reloads them at every step, and runs at
/// about half speed. The shapes are the ones BLIS and OpenBLAS use for these CPUs:
///
/// | kernel | registers | tile (Float) | registers used |
/// | --- | --- | --- | --- |
/// | `avx512` | 32 × 512 bits | 8 × 32 | 16 + 2 + 1 = 19 |
/// | `avx2` | 16 × 256 bits | 6 × 16 | 12 + 2 + 1 = 15 |
/// | `neon` | 32 × 128 bits | 12 × 8 | 24 + 2 + 1 = 27 |
/// | `portable` | 16 × 128 bits (SSE2) | 6 × 8 | 12 + 2 + 1 = 15 |
///
/// A Double vector holds half as many lanes, so Double tiles are half as wide.
///
/// Every kernel computes each element of C as one chain of fused multiply-adds over `p` in
/// increasing order, starting from zero (then adds it to C when accumulating). The tile
/// shape decides only which elements are computed together, so every kernel gives the same
/// bits as `matmulChain`, and a test holds each of them to it.
public enum MatmulKernel: String, CaseIterable, Sendable, CustomStringConvertible {
  /// 8 × 32 Float (`EightRowKernel<SIMD16<Float>>`), for CPUs with AVX-512.
  case avx512
  /// 6 × 16 Float (`SixRowKernel<SIMD8<Float>>`), for x86-64 with AVX2 and FMA.
  case avx2
  /// 12 × 8 Float (`TwelveRowKernel<SIMD4<Float>>`), for arm64 (Apple Silicon).
  case neon
  /// 6 × 8 Float (`SixRowKernel<SIMD4<Float>>`), for baseline x86-64 (SSE2).
  case portable

  /// The kernel this build was compiled for: `Package.swift` reads the CPU's features
  /// (`/proc/cpuinfo` on Linux) and defines `TINYMIXER_AVX512` or `TINYMIXER_AVX2`;
  /// `TINYMIXER_TARGET=avx2|znver3|avx512|portable` at build time chooses instead.
  public static var native: MatmulKernel {
    #if TINYMIXER_AVX512
      .avx512
    #elseif TINYMIXER_AVX2
      .avx2
    #elseif arch(arm64)
      .neon
    #else
      .portable
    #endif
  }

  /// Rows of C in one tile, and Float lanes in each of its two vectors, as the kernel that
  /// `matmul` runs for this case declares them.
  public var floatTile: (rows: Int, lanes: Int) {
    let (rows, panelWidth) = tile(Float.self)
    return (rows, panelWidth / 2)
  }

  /// The vector registers of the instruction set the kernel is made for.
  public var registerFile: String {
    switch self {
    case .avx512: "32 registers of 512 bits"
    case .avx2: "16 registers of 256 bits"
    case .neon: "32 registers of 128 bits"
    case .portable: "16 registers of 128 bits"
    }
  }

  /// For example `avx2: 6 × 16 Float tile (SIMD8<Float> × 2, 6 × 8 Double), 15 of 16
  /// registers of 256 bits`: the registers used are the accumulators, B's two vectors and
  /// A's broadcast number.
  public var description: String {
    let (rows, lanes) = floatTile
    return
      "\(rawValue): \(rows) × \(2 * lanes) Float tile (SIMD\(lanes)<Float> × 2, "
      + "\(rows) × \(lanes) Double), \(2 * rows + 3) of \(registerFile)"
  }
}
