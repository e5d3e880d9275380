import Autodiff
import Kernels

/// Causal multi-head self-attention: for each sequence and head,
/// `softmax(Q·Kᵀ / √size + mask) · V`, where position t sees positions 0...t.
///
/// `query`, `key` and `value` are projections, `[batch, length, heads × size]`; so is the
/// result. One fused kernel per direction handles every (sequence, head) in place;
/// `causalAttentionReference` is the same function written with primitive operations.
public func causalAttention(query: Tensor, key: Tensor, value: Tensor, layout: HeadLayout) -> Tensor
{
  for input in [query, key, value] {
    precondition(input.count == layout.count, "attention input \(input.shape) for layout \(layout)")
  }
  let scale = 1 / Double(layout.size).squareRoot()
  let probabilityCount = layout.batch * layout.heads * layout.length * layout.length
  var probabilities: Storage? = nil
  func forward<T: KernelScalar>(_ t: [[T]], _ out: UnsafeMutablePointer<T>) {
    // The kernel writes every probability (zeros above the diagonal) and every gradient
    // below, so none of these arrays is zeroed first.
    let p: [T] = makeArray(probabilityCount) { p in
      Kernels.causalAttention(
        query: t[0], key: t[1], value: t[2], layout: layout, scale: scale, into: out,
        probabilities: p)
    }
    probabilities = Storage(p)
  }
  let output = Tensor(
    shape: query.shape,
    storage: runKernel(
      [query, key, value], count: query.count, float: forward, double: forward))
  let saved = Tensor(shape: [probabilityCount], storage: probabilities!)
  return output.recorded(inputs: [query, key, value]) { g, _ in
    var dKey: Storage? = nil
    var dValue: Storage? = nil
    func backward<T: KernelScalar>(_ t: [[T]], _ dq: UnsafeMutablePointer<T>) {
      var dv: [T] = []
      let dk: [T] = makeArray(layout.count) { dk in
        dv = makeArray(layout.count) { dv in
          causalAttentionBackward(
            query: t[0], key: t[1], value: t[2], probabilities: t[3], gradient: t[4],
            layout: layout, scale: scale, dQuery: dq, dKey: dk, dValue: dv)
        }
      }
      (dKey, dValue) = (Storage(dk), Storage(dv))
    }
    let dQuery = runKernel(
      [query, key, value, saved, g], count: query.count, float: backward, double: backward)
    return [dQuery, dKey!, dValue!].map { Tensor(shape: query.shape, storage: $0) }
  }
}

/// `causalAttention` written with primitive operations: split heads, scaled scores,
/// mask the future with a large negative (finite) number, softmax, weighted sum of values.
public func causalAttentionReference(query: Tensor, key: Tensor, value: Tensor, layout: HeadLayout)
  -> Tensor
{
  func heads(_ x: Tensor) -> Tensor {
    x.reshaped([layout.batch, layout.length, layout.heads, layout.size]).permuted([0, 2, 1, 3])
  }
  let scores = matmul(heads(query), heads(key), transposeB: true) / Double(layout.size).squareRoot()
  let t = layout.length
  let future = Tensor(
    shape: [t, t], scalars: (0..<t * t).map { $0 % t > $0 / t ? 1 : 0 }, dtype: query.dtype)
  let probabilities = scores.maskedFill(future, with: -1e9).softmax()
  return matmul(probabilities, heads(value)).permuted([0, 2, 1, 3]).reshaped(query.shape)
}
