import Kernels

// The one place where tensors meet the Float and Double kernels. Each function here runs
// one kernel on tensors of either element type and records nothing; the operations in
// Operations/ call these for their forward and backward passes.

/// An array of `count` elements, all written by `fill`.
public func makeArray<T>(_ count: Int, _ fill: (UnsafeMutablePointer<T>) -> Void) -> [T] {
  [T](unsafeUninitializedCapacity: max(1, count)) { buffer, initialized in
    fill(buffer.baseAddress!)
    initialized = count
  }
}

/// Runs a kernel on `inputs` (all of one element type) that writes `count` new elements,
/// calling the Float or the Double version of it: the dtype switch, in one place.
///
/// The kernel is written once, as a generic function over `KernelScalar`, and passed as
/// both (`float: kernel, double: kernel`): Swift fills in the element type of each.
/// This is how a fused operation is added outside this module: its forward pass runs a
/// kernel through `runKernel`, and `recorded` attaches its vector-Jacobian products.
public func runKernel(
  _ inputs: [Tensor], count: Int,
  float: ([[Float]], UnsafeMutablePointer<Float>) -> Void,
  double: ([[Double]], UnsafeMutablePointer<Double>) -> Void
) -> Storage {
  let dtype = inputs[0].dtype
  precondition(
    inputs.allSatisfy { $0.dtype == dtype },
    "mixed element types: \(inputs.map(\.dtype.rawValue))")
  switch dtype {
  case .float32:
    let arrays = inputs.map(\.floats)
    return .float32(makeArray(count) { float(arrays, $0) })
  case .float64:
    let arrays = inputs.map(\.doubles)
    return .float64(makeArray(count) { double(arrays, $0) })
  }
}

/// Runs a kernel on `inputs` that updates `target`'s numbers in place (an `accumulate`
/// product adding itself into them), and returns `target`. `target` itself changes, so it
/// must be a tensor nothing else reads: the tape's sums so far (`Tape.Edge.adding`). Its
/// numbers are copied first only if another tensor shares them (copy-on-write), so such a
/// sum takes each product added into it without a new array.
@discardableResult
func runKernel(
  _ inputs: [Tensor], updating target: Tensor,
  float: ([[Float]], UnsafeMutablePointer<Float>) -> Void,
  double: ([[Double]], UnsafeMutablePointer<Double>) -> Void
) -> Tensor {
  precondition(
    inputs.allSatisfy { $0.dtype == target.dtype },
    "mixed element types: \((inputs + [target]).map(\.dtype.rawValue))")
  // The tensor lets go of its array while the kernel writes, so that, unless shared, the
  // array has one owner and is written where it is.
  switch target.storage {
  case .float32(var values):
    target.storage = .float32([])
    let arrays = inputs.map(\.floats)
    values.withUnsafeMutableBufferPointer { float(arrays, $0.baseAddress!) }
    target.storage = .float32(values)
  case .float64(var values):
    target.storage = .float64([])
    let arrays = inputs.map(\.doubles)
    values.withUnsafeMutableBufferPointer { double(arrays, $0.baseAddress!) }
    target.storage = .float64(values)
  }
  return target
}

/// A gradient a kernel forms: a new tensor of `shape`, or, given the gradient so far
/// (`Tape.Edge.adding`'s `sofar`, as many numbers, whatever its shape), added into its
/// numbers in place (`runKernel(_:updating:…)`). The kernel writes, or accumulates where
/// `sofar` is given.
public func runKernel(
  _ inputs: [Tensor], shape: [Int], addingInto sofar: Tensor?,
  float: ([[Float]], UnsafeMutablePointer<Float>) -> Void,
  double: ([[Double]], UnsafeMutablePointer<Double>) -> Void
) -> Tensor {
  let count = Shape.count(shape)
  guard let sofar else {
    return Tensor(
      shape: shape, storage: runKernel(inputs, count: count, float: float, double: double))
  }
  precondition(sofar.count == count, "adding \(shape) into a gradient of \(sofar.shape)")
  return runKernel(inputs, updating: sofar, float: float, double: double)
}

/// `runKernel` for a kernel that writes two new arrays, of `counts.0` and `counts.1`
/// elements: an output and what the backward pass keeps of the forward, or two gradients.
public func runKernel(
  _ inputs: [Tensor], counts: (Int, Int),
  float: ([[Float]], UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void,
  double: ([[Double]], UnsafeMutablePointer<Double>, UnsafeMutablePointer<Double>) -> Void
) -> (Storage, Storage) {
  var second: Storage? = nil
  let first = runKernel(
    inputs, count: counts.0,
    float: { arrays, y in second = .float32(makeArray(counts.1) { float(arrays, y, $0) }) },
    double: { arrays, y in second = .float64(makeArray(counts.1) { double(arrays, y, $0) }) })
  return (first, second!)
}

extension Tensor {
  /// `f(x)` elementwise.
  func mapped(_ function: UnaryFunction) -> Tensor {
    func kernel<T: KernelScalar>(_ x: [[T]], _ y: UnsafeMutablePointer<T>) {
      Kernels.map(function, x[0], into: y, count: x[0].count)
    }
    let storage = runKernel([self], count: count, float: kernel, double: kernel)
    return Tensor(shape: shape, storage: storage)
  }

  /// `g · f'(x)` elementwise, `g` of this tensor's shape.
  func mappedBackward(_ function: UnaryFunction, gradient: Tensor) -> Tensor {
    func kernel<T: KernelScalar>(_ x: [[T]], _ dx: UnsafeMutablePointer<T>) {
      Kernels.mapBackward(function, x[0], gradient: x[1], into: dx, count: x[0].count)
    }
    let storage = runKernel([self, gradient], count: count, float: kernel, double: kernel)
    return Tensor(shape: shape, storage: storage)
  }

  /// `f(a, b)` elementwise, broadcasting `a` and `b` to a common shape.
  static func combined(_ function: BinaryFunction, _ a: Tensor, _ b: Tensor) -> Tensor {
    let shape = Shape.broadcast(a.shape, b.shape)
    let aStrides = Shape.broadcastStrides(of: a.shape, to: shape)
    let bStrides = Shape.broadcastStrides(of: b.shape, to: shape)
    func kernel<T: KernelScalar>(_ x: [[T]], _ y: UnsafeMutablePointer<T>) {
      Kernels.combine(
        function, x[0], strides: aStrides, x[1], strides: bStrides, into: y, shape: shape)
    }
    let storage = runKernel([a, b], count: Shape.count(shape), float: kernel, double: kernel)
    return Tensor(shape: shape, storage: storage)
  }

  /// `condition ≠ 0 ? a : b` elementwise, broadcasting all three.
  static func selected(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
    let shape = Shape.broadcast(Shape.broadcast(condition.shape, a.shape), b.shape)
    let strides = [condition, a, b].map { Shape.broadcastStrides(of: $0.shape, to: shape) }
    func kernel<T: KernelScalar>(_ x: [[T]], _ y: UnsafeMutablePointer<T>) {
      Kernels.select(
        x[0], strides: strides[0], x[1], strides: strides[1], x[2], strides: strides[2],
        into: y, shape: shape)
    }
    let storage = runKernel(
      [condition, a, b], count: Shape.count(shape), float: kernel, double: kernel)
    return Tensor(shape: shape, storage: storage)
  }

  /// A contiguous tensor of `shape` whose element at each index is read from this tensor
  /// through `strides` (a permutation or a broadcast of it).
  func copied(strides: [Int], shape: [Int]) -> Tensor {
    func kernel<T: KernelScalar>(_ x: [[T]], _ y: UnsafeMutablePointer<T>) {
      Kernels.copy(x[0], strides: strides, into: y, shape: shape)
    }
    let storage = runKernel([self], count: Shape.count(shape), float: kernel, double: kernel)
    return Tensor(shape: shape, storage: storage)
  }

  /// Sums along `axis`, keeping it with length 1.
  func summed(alongAxis axis: Int) -> Tensor {
    let (outer, length, inner) = outerLengthInner(around: axis)
    var kept = shape
    kept[axis] = 1
    func kernel<T: KernelScalar>(_ x: [[T]], _ y: UnsafeMutablePointer<T>) {
      Kernels.sum(x[0], outer: outer, length: length, inner: inner, into: y)
    }
    let storage = runKernel([self], count: outer * inner, float: kernel, double: kernel)
    return Tensor(shape: kept, storage: storage)
  }

  /// The maximum along `axis` (kept with length 1) and, for each, the index along `axis`
  /// where it is first reached.
  func max(alongAxis axis: Int) -> (values: Tensor, indices: [Int]) {
    let (outer, length, inner) = outerLengthInner(around: axis)
    var kept = shape
    kept[axis] = 1
    var indices = [Int](repeating: 0, count: outer * inner)
    func kernel<T: KernelScalar>(_ x: [[T]], _ y: UnsafeMutablePointer<T>) {
      Kernels.max(x[0], outer: outer, length: length, inner: inner, into: y, indices: &indices)
    }
    let storage = runKernel([self], count: outer * inner, float: kernel, double: kernel)
    return (Tensor(shape: kept, storage: storage), indices)
  }

  /// This tensor viewed as `[outer, length, inner]` around `axis`.
  func outerLengthInner(around axis: Int) -> (outer: Int, length: Int, inner: Int) {
    (Shape.count(Array(shape[..<axis])), shape[axis], Shape.count(Array(shape[(axis + 1)...])))
  }

  /// `C = op(A) · op(B)` for the given layout, as a tensor of `shape`; with `adding`, the
  /// product added into D's numbers in place (as many as C's, in C's layout, whatever D's
  /// shape: `Tape.Edge.adding`'s sum so far), with the bits of the product formed and then
  /// added.
  static func multiplied(
    _ a: Tensor, _ b: Tensor, _ layout: MatmulShape, shape: [Int], adding d: Tensor? = nil
  ) -> Tensor {
    func kernel<T: KernelScalar>(_ x: [[T]], _ y: UnsafeMutablePointer<T>) {
      matmul(x[0], x[1], into: y, layout, accumulate: d != nil)
    }
    return runKernel([a, b], shape: shape, addingInto: d, float: kernel, double: kernel)
  }

  /// Softmax (or log-softmax) of each row along the last axis.
  func softmaxOfRows(log: Bool) -> Tensor {
    let columns = shape.last ?? 1
    let rows = count / Swift.max(1, columns)
    func kernel<T: KernelScalar>(_ x: [[T]], _ y: UnsafeMutablePointer<T>) {
      log
        ? Kernels.logSoftmaxRows(x[0], into: y, rows: rows, columns: columns)
        : Kernels.softmaxRows(x[0], into: y, rows: rows, columns: columns)
    }
    let storage = runKernel([self], count: count, float: kernel, double: kernel)
    return Tensor(shape: shape, storage: storage)
  }

  /// The backward pass of `softmaxOfRows`, given its output (this tensor) and the
  /// gradient of that output.
  func softmaxOfRowsBackward(gradient: Tensor, log: Bool) -> Tensor {
    let columns = shape.last ?? 1
    let rows = count / Swift.max(1, columns)
    func kernel<T: KernelScalar>(_ x: [[T]], _ dx: UnsafeMutablePointer<T>) {
      log
        ? Kernels.logSoftmaxRowsBackward(
          x[0], gradient: x[1], into: dx, rows: rows, columns: columns)
        : Kernels.softmaxRowsBackward(
          x[0], gradient: x[1], into: dx, rows: rows, columns: columns)
    }
    let storage = runKernel([self, gradient], count: count, float: kernel, double: kernel)
    return Tensor(shape: shape, storage: storage)
  }

  /// Weighted cross-entropy of rows of logits (`[rows, classes]` flattened): the weighted
  /// sum of row losses, and each row's log-sum-exp.
  func crossEntropySum(targets: [Int], weights: Tensor) -> (sum: Double, logSumExp: Tensor) {
    let classes = shape.last!
    let rows = count / classes
    var total = 0.0
    func kernel<T: KernelScalar>(_ x: [[T]], _ lse: UnsafeMutablePointer<T>) {
      total = crossEntropyRows(
        x[0], targets: targets, weights: x[1], rows: rows, classes: classes, logSumExp: lse)
    }
    let storage = runKernel([self, weights], count: rows, float: kernel, double: kernel)
    return (total, Tensor(shape: [rows], storage: storage))
  }

  /// The gradient of `scale ·` the weighted cross-entropy sum with respect to these logits.
  func crossEntropyBackward(targets: [Int], weights: Tensor, logSumExp: Tensor, scale: Double)
    -> Tensor
  {
    let classes = shape.last!
    let rows = count / classes
    func kernel<T: KernelScalar>(_ x: [[T]], _ dx: UnsafeMutablePointer<T>) {
      crossEntropyRowsBackward(
        x[0], targets: targets, weights: x[1], logSumExp: x[2], scale: scale, rows: rows,
        classes: classes, into: dx)
    }
    let storage = runKernel(
      [self, weights, logSumExp], count: count, float: kernel, double: kernel)
    return Tensor(shape: shape, storage: storage)
  }

  /// The `k` largest values along the last axis, largest first, and their indices.
  func largest(_ k: Int) -> (values: Tensor, indices: [Int]) {
    let columns = shape.last!
    let rows = count / Swift.max(1, columns)
    var indices = [Int](repeating: 0, count: rows * k)
    func kernel<T: KernelScalar>(_ x: [[T]], _ y: UnsafeMutablePointer<T>) {
      Kernels.topKRows(x[0], rows: rows, columns: columns, k: k, values: y, indices: &indices)
    }
    let storage = runKernel([self], count: rows * k, float: kernel, double: kernel)
    return (Tensor(shape: Array(shape.dropLast()) + [k], storage: storage), indices)
  }

  /// Rows of this `[rows, width]` table at `indices`, as a tensor of `shape`.
  func gathered(rows indices: [Int], shape: [Int]) -> Tensor {
    let width = self.shape[1]
    func kernel<T: KernelScalar>(_ x: [[T]], _ y: UnsafeMutablePointer<T>) {
      Kernels.gatherRows(x[0], rowLength: width, indices: indices, count: indices.count, into: y)
    }
    let storage = runKernel([self], count: indices.count * width, float: kernel, double: kernel)
    return Tensor(shape: shape, storage: storage)
  }

  /// A `[tableRows, width]` tensor of zeros with each row of this tensor (viewed as
  /// `[indices.count, width]`) added at its index.
  func scatteredAdd(rows indices: [Int], tableRows: Int) -> Tensor {
    let width = count / Swift.max(1, indices.count)
    func kernel<T: KernelScalar>(_ x: [[T]], _ table: UnsafeMutablePointer<T>) {
      table.initialize(repeating: 0, count: tableRows * width)
      Kernels.scatterAddRows(
        x[0], rowLength: width, indices: indices, count: indices.count, into: table)
    }
    let storage = runKernel([self], count: tableRows * width, float: kernel, double: kernel)
    return Tensor(shape: [tableRows, width], storage: storage)
  }
}
