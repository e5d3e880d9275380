/// The shape of `C = op(A) · op(B)` for a batch of row-major matrices.
///
/// `op(A)` is `[m, k]` and `op(B)` is `[k, n]`; `C` is `[m, n]`. With `transposeA`, A is
/// stored as `[k, m]` and read as its transpose, so `Aᵀ · B` needs no transposed copy;
/// likewise `transposeB` stores B as `[n, k]`. Each stored matrix may have rows further
/// apart than its width (its *leading dimension*, as in BLAS), so a matmul can read one
/// attention head out of a `[tokens, heads × size]` tensor in place. Batch strides count
/// scalars between one matrix of the batch and the next; a stride of 0 reuses one matrix
/// for the whole batch.
public struct MatmulShape: Equatable, Sendable, CustomStringConvertible {
  /// Rows of `op(A)` and of `C`.
  public var m: Int
  /// Columns of `op(B)` and of `C`.
  public var n: Int
  /// The shared inner dimension.
  public var k: Int
  /// Whether A is stored as `[k, m]`.
  public var transposeA: Bool
  /// Whether B is stored as `[n, k]`.
  public var transposeB: Bool
  /// How many independent products.
  public var batch: Int
  /// Scalars from one A of the batch to the next (0: the same A for all).
  public var batchStrideA: Int
  /// Scalars from one B of the batch to the next (0: the same B for all).
  public var batchStrideB: Int
  /// Scalars from one C of the batch to the next.
  public var batchStrideC: Int
  /// Scalars between consecutive rows of A as stored.
  public var leadingDimensionA: Int
  /// Scalars between consecutive rows of B as stored.
  public var leadingDimensionB: Int
  /// Scalars between consecutive rows of C.
  public var leadingDimensionC: Int
  /// A batch of `batch` products; strides default to contiguous, unshared matrices.
  public init(
    m: Int, n: Int, k: Int, transposeA: Bool = false, transposeB: Bool = false,
    batch: Int = 1, batchStrideA: Int? = nil, batchStrideB: Int? = nil,
    leadingDimensionA: Int? = nil, leadingDimensionB: Int? = nil, leadingDimensionC: Int? = nil
  ) {
    precondition(m >= 0 && n >= 0 && k >= 0 && batch >= 0, "negative matmul dimension")
    self.m = m
    self.n = n
    self.k = k
    self.transposeA = transposeA
    self.transposeB = transposeB
    self.batch = batch
    self.leadingDimensionA = leadingDimensionA ?? (transposeA ? m : k)
    self.leadingDimensionB = leadingDimensionB ?? (transposeB ? k : n)
    self.leadingDimensionC = leadingDimensionC ?? n
    precondition(
      self.leadingDimensionA >= (transposeA ? m : k)
        && self.leadingDimensionB >= (transposeB ? k : n)
        && self.leadingDimensionC >= n, "a leading dimension is smaller than its row")
    self.batchStrideA = batchStrideA ?? (transposeA ? k : m) * self.leadingDimensionA
    self.batchStrideB = batchStrideB ?? (transposeB ? n : k) * self.leadingDimensionB
    self.batchStrideC = m * self.leadingDimensionC
  }

  /// Floating-point operations: one multiply and one add per term.
  public var flops: Double { 2 * Double(m) * Double(n) * Double(k) * Double(batch) }

  /// Distance between `A[i, p]` and `A[i + 1, p]` (of `op(A)`) in memory.
  var aRowStride: Int { transposeA ? 1 : leadingDimensionA }
  /// Distance between `A[i, p]` and `A[i, p + 1]` (of `op(A)`) in memory.
  var aColumnStride: Int { transposeA ? leadingDimensionA : 1 }
  /// Distance between `B[p, j]` and `B[p + 1, j]` (of `op(B)`) in memory.
  var bRowStride: Int { transposeB ? 1 : leadingDimensionB }
  /// Distance between `B[p, j]` and `B[p, j + 1]` (of `op(B)`) in memory.
  var bColumnStride: Int { transposeB ? leadingDimensionB : 1 }

  /// For example `[64×32]·[32×64]ᵀ ×128`.
  public var description: String {
    let a = transposeA ? "[\(k)×\(m)]ᵀ" : "[\(m)×\(k)]"
    let b = transposeB ? "[\(n)×\(k)]ᵀ" : "[\(k)×\(n)]"
    return a + "·" + b + (batch == 1 ? "" : " ×\(batch)")
  }
}
