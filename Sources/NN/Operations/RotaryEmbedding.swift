import Autodiff
import Foundation
import Kernels

/// Rotary position embedding of `x` (`[batch, length, heads × size]`) in the rotate-half
/// layout: within each head, elements `i` and `i + size/2` turn together by the angle
/// `position · θ^(−2i/size)`. Its backward pass turns the gradient back by the same angle.
public func rotaryEmbedding(_ x: Tensor, layout: HeadLayout, theta: Double) -> Tensor {
  precondition(x.count == layout.count, "rotary embedding of \(x.shape) with layout \(layout)")
  func rotate(_ input: Tensor, inverse: Bool) -> Tensor {
    func kernel<T: KernelScalar>(_ t: [[T]], _ y: UnsafeMutablePointer<T>) {
      Kernels.rotaryEmbedding(t[0], layout: layout, theta: theta, inverse: inverse, into: y)
    }
    return Tensor(
      shape: input.shape,
      storage: runKernel([input], count: input.count, float: kernel, double: kernel))
  }
  return rotate(x, inverse: false).recorded((x, { g in rotate(g, inverse: true) }))
}

/// `rotaryEmbedding` written with primitive operations:
/// `x · cos + rotateHalf(x) · sin` with `rotateHalf(x) = [−x₂, x₁]` for halves `x₁, x₂`.
public func rotaryEmbeddingReference(_ x: Tensor, layout: HeadLayout, theta: Double) -> Tensor {
  let half = layout.size / 2
  let heads = x.reshaped([layout.batch, layout.length, layout.heads, layout.size])
  let halves = heads.split(along: -1, sizes: [half, half])
  let rotated = concatenate([-halves[1], halves[0]], along: -1)
  let angles = (0..<layout.length).flatMap { position in
    (0..<layout.size).map { i in
      Double(position) * Foundation.pow(theta, -2 * Double(i % half) / Double(layout.size))
    }
  }
  let cosine = Tensor(
    shape: [layout.length, 1, layout.size], scalars: angles.map(Foundation.cos), dtype: x.dtype)
  let sine = Tensor(
    shape: [layout.length, 1, layout.size], scalars: angles.map(Foundation.sin), dtype: x.dtype)
  return (heads * cosine + rotated * sine).reshaped(x.shape)
}
