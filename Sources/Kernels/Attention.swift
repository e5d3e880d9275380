/// Causal self-attention for every (sequence, head): `O = softmax(Q·Kᵀ·scale + mask) · V`,
/// where the mask lets position t attend to positions 0...t only.
///
/// `q`, `k`, `v` and `output` use `layout` (`[batch, length, heads, size]`); a head's rows
/// are read and written in place, and copied only where a product needs them transposed (Kᵀ,
/// and Vᵀ backward) or, at a head size that is no whole number of half panels, padded.
/// Writes the attention probabilities, `[batch, heads, length, length]`, zero above the
/// diagonal, for the backward pass. Masked scores are never
/// computed into the softmax, so nothing leaks from the future and no infinity is ever
/// formed. `kernel` chooses the register tile (tests run each); the bits are the same.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func causalAttention<T: KernelScalar>(
  query q: UnsafePointer<T>, key k: UnsafePointer<T>, value v: UnsafePointer<T>,
  layout: HeadLayout, scale: Double, into output: UnsafeMutablePointer<T>,
  probabilities: UnsafeMutablePointer<T>, kernel: MatmulKernel = .native
) { attentionForward(q, k, v, layout, scale, output, probabilities, kernel) }

/// Backward of `causalAttention`, given its probabilities and the gradient of its output:
/// with `P` the probabilities and `dO` the gradient,
/// `dV = Pᵀ·dO`, `dP = dO·Vᵀ`, `dS = P ⊙ (dP − rowsum(dP ⊙ P)) · scale`,
/// `dQ = dS·K`, `dK = dSᵀ·Q`, each per (sequence, head).
@_specialize(where T == Float)
@_specialize(where T == Double)
public func causalAttentionBackward<T: KernelScalar>(
  query q: UnsafePointer<T>, key k: UnsafePointer<T>, value v: UnsafePointer<T>,
  probabilities: UnsafePointer<T>, gradient dOut: UnsafePointer<T>, layout: HeadLayout,
  scale: Double, dQuery: UnsafeMutablePointer<T>, dKey: UnsafeMutablePointer<T>,
  dValue: UnsafeMutablePointer<T>, kernel: MatmulKernel = .native
) {
  attentionBackward(q, k, v, probabilities, dOut, layout, scale, dQuery, dKey, dValue, kernel)
}

private func attentionForward<T: KernelScalar>(
  _ q: UnsafePointer<T>, _ k: UnsafePointer<T>, _ v: UnsafePointer<T>, _ layout: HeadLayout,
  _ scale: Double, _ output: UnsafeMutablePointer<T>, _ probabilities: UnsafeMutablePointer<T>,
  _ kernel: MatmulKernel
) {
  let head = HeadProducts<T>(layout, kernel: kernel)
  parallelFor(layout.batch * layout.heads) { task in
    head.forward(
      task, q, k, v, scale: T(scale), output: output,
      probabilities: probabilities + task * layout.length * layout.length)
  }
}

/// One (sequence, head)'s products, by the matmul's register tile called directly:
/// each row tile of the scores, its softmax and its rows of the output in turn, while they
/// are in the level-1 cache.
///
/// Only the scores' lower triangle is used, and P and dS are zero above the diagonal: a
/// tile's scores stop at the panel of its last diagonal number, and its chains through P or
/// dS stop at that number (`P·V`, `dS·K`) or, transposed, start at the tile's first row
/// (`Pᵀ·dO`, `dSᵀ·Q`). Adding an exact zero at the end of a chain, or to +0 at its start,
/// changes no bit, so each number is the plain chain's (a test holds every kernel to it).
///
/// The products are small (64 × 64 × 32 at the bench model's 64 positions). Through the
/// matmul, one batched call a product for a sequence's heads, attention took 4.83 to 5.13
/// ms of the bench mixture's AVX2 step, this way 4.21 to 4.46 (`--profile`, five each),
/// and the step 0.51 ms less (sixteen pairs in turns, thirteen faster); the AVX-512
/// kernel's step 0.12 ms less (twelve pairs); `train toy-sst2` (16 and 17 positions) took
/// 11.24 to 11.31 s against 11.30 to 11.47 (AMD EPYC Zen 5, 2 threads).
private struct HeadProducts<T: KernelScalar> {
  let layout: HeadLayout
  /// The register tile (`MatmulKernel.multiplyTile`).
  let kernel: MatmulKernel
  /// Positions, head size and the row stride of q, k, v and the output.
  var t: Int { layout.length }
  var d: Int { layout.size }
  var ld: Int { layout.rowStride }
  /// The tile's rows and its panel's columns.
  let tileRows, panelWidth: Int
  /// The positions rounded up to whole row tiles: the rows of the score buffers.
  let paddedLength: Int
  /// The score buffers' row stride: at least `paddedLength`, in whole panels.
  let scoreStride: Int
  /// The head size rounded up to whole panels: the row stride of a padded copy of a head.
  let sizeStride: Int

  init(_ layout: HeadLayout, kernel: MatmulKernel) {
    (self.layout, self.kernel) = (layout, kernel)
    (tileRows, panelWidth) = kernel.tile(T.self)
    paddedLength = (layout.length + tileRows - 1) / tileRows * tileRows
    scoreStride = (paddedLength + panelWidth - 1) / panelWidth * panelWidth
    sizeStride = (layout.size + panelWidth - 1) / panelWidth * panelWidth
  }

  /// Whether a head's columns are read in place as B: each panel whole, or a narrow one
  /// exactly (the kernel then reads its first vector only). Otherwise the kernel's reads
  /// would run past the head, and past the array at its last head, so B is copied.
  var readsInPlace: Bool { d % (panelWidth / 2) == 0 }

  /// `C = A · B` for one row tile: C's `rows` rows (at most a tile) and columns `0..<width`
  /// (`width` rounded up to panels is what is computed; `columns` of them are C's), each a
  /// chain of `depth` steps from `a` and `b`. A's tile rows must all be readable; B's
  /// panels too, for every step.
  func multiply(
    depth: Int, a: UnsafePointer<T>, aStrides: (row: Int, column: Int),
    b: UnsafePointer<T>, bRowStride: Int, c: UnsafeMutablePointer<T>, cRowStride: Int,
    rows: Int, columns: Int, width: Int, edge: UnsafeMutablePointer<T>
  ) {
    var first = 0
    while first < width {
      let left = columns - first
      let narrow = left <= panelWidth / 2
      let whole = rows == tileRows && (left >= panelWidth || left == panelWidth / 2)
      kernel.multiplyTile(
        depth: depth, a: a, aStrides: aStrides, b: b + first, bRowStride: bRowStride,
        c: whole ? c + first : edge, cRowStride: whole ? cRowStride : panelWidth, narrow: narrow)
      if !whole {
        for r in 0..<rows {
          (c + r * cRowStride + first).update(
            from: edge + r * panelWidth, count: min(left, panelWidth))
        }
      }
      first += panelWidth
    }
  }

  /// Where tile `tile`'s rows of a head read in place as A are (`rows` of them a stride
  /// `ld` apart): there, or, for a last tile of fewer than `tileRows` rows, copied with
  /// zero rows after them into `strip`, so that the kernel reads only this head's numbers.
  func rowsOfA(
    _ head: UnsafePointer<T>, tile: Int, rows: Int, strip: UnsafeMutablePointer<T>
  ) -> (UnsafePointer<T>, (row: Int, column: Int)) {
    let first = head + tile * tileRows * ld
    if rows == tileRows { return (first, (ld, 1)) }
    strip.update(repeating: 0, count: tileRows * d)
    for r in 0..<rows { (strip + r * d).update(from: first + r * ld, count: d) }
    return (UnsafePointer(strip), (d, 1))
  }

  /// A head as B, `[t, d]`: in place (`readsInPlace`), or copied with zero columns to
  /// whole panels into `copy`.
  func columnsOfB(_ head: UnsafePointer<T>, copy: UnsafeMutablePointer<T>) -> (
    UnsafePointer<T>, Int
  ) {
    if readsInPlace { return (head, ld) }
    for s in 0..<t {
      (copy + s * sizeStride).update(from: head + s * ld, count: d)
      (copy + s * sizeStride + d).update(repeating: 0, count: sizeStride - d)
    }
    return (UnsafePointer(copy), sizeStride)
  }

  /// A head transposed, `[d, scoreStride]`: B of `Q·Kᵀ` and `dO·Vᵀ`, zero past position t
  /// to the end of the last panel the scores read.
  func transposed(_ head: UnsafePointer<T>, into target: UnsafeMutablePointer<T>) {
    transposeInBlocks(
      head, rowStride: ld, rows: t, columns: d, into: target, targetRowStride: scoreStride)
    let read = (t + panelWidth - 1) / panelWidth * panelWidth
    for i in 0..<d { (target + i * scoreStride + t).update(repeating: 0, count: read - t) }
  }

  /// One head's scratch, carved up: the scores (or dS), a transposed head, three copies of
  /// heads, a strip of A and an edge tile of C.
  struct Buffers {
    let scores, transposed, copies, strip, edge: UnsafeMutablePointer<T>
  }

  /// Calls `body` with the buffers of the head of task `task`, and where its rows start.
  func withBuffers(task: Int, _ body: (Buffers, _ base: Int) -> Void) {
    let (b, h) = task.quotientAndRemainder(dividingBy: layout.heads)
    let count =
      paddedLength * scoreStride + d * scoreStride + 3 * t * sizeStride + tileRows * max(d, t)
      + tileRows * panelWidth
    Scratch.with(T.self, count: count) { scratch in
      let transposed = scratch + paddedLength * scoreStride
      let copies = transposed + d * scoreStride
      let strip = copies + 3 * t * sizeStride
      body(
        Buffers(
          scores: scratch, transposed: transposed, copies: copies, strip: strip,
          edge: strip + tileRows * max(d, t)), layout.offset(batch: b, head: h))
    }
  }

  func forward(
    _ task: Int, _ q: UnsafePointer<T>, _ k: UnsafePointer<T>, _ v: UnsafePointer<T>,
    scale: T, output: UnsafeMutablePointer<T>, probabilities p: UnsafeMutablePointer<T>
  ) {
    withBuffers(task: task) { buffers, base in
      let (scores, keys, strip, edge) = (
        buffers.scores, buffers.transposed, buffers.strip, buffers.edge
      )
      transposed(k + base, into: keys)
      let (values, valueStride) = columnsOfB(v + base, copy: buffers.copies)
      for tile in 0..<paddedLength / tileRows {
        let first = tile * tileRows
        let visible = min(t, first + tileRows)
        // Scores S = Q·Kᵀ, the panels at or left of the tile's last diagonal number.
        let (a, aStrides) = rowsOfA(q + base, tile: tile, rows: visible - first, strip: strip)
        multiply(
          depth: d, a: a, aStrides: aStrides, b: keys, bRowStride: scoreStride,
          c: scores + first * scoreStride, cRowStride: scoreStride, rows: tileRows,
          columns: scoreStride, width: visible, edge: edge)
        causalSoftmax(
          scores, rowStride: scoreStride, rows: first..<visible, length: t, scale: scale)
        for r in first..<visible { (p + r * t).update(from: scores + r * scoreStride, count: t) }
        // O = P·V, each chain stopping at the tile's last diagonal number (P is zero after).
        multiply(
          depth: visible, a: scores + first * scoreStride, aStrides: (scoreStride, 1),
          b: values, bRowStride: valueStride, c: output + base + first * ld, cRowStride: ld,
          rows: visible - first, columns: d, width: d, edge: edge)
      }
    }
  }
}

/// The causal softmax of rows `rows` of a head's scores (`rowStride` apart), in place: row
/// `r` becomes the softmax of its first `r + 1` numbers times `scale`, followed by zeros to
/// column `length`.
///
/// It works in three passes over the rows (maxima and scaling, exponentials, sums and
/// division), not row by row: the steps within a row depend on each other (the exponentials
/// need the maximum, the division their sum), while different rows do not, so a pass keeps
/// the CPU busy with several rows at once rather than waiting on one. On one thread of the
/// AMD EPYC Zen 3 (AVX2), in turns, a layer's softmax (bench model: 32 sequences of 64
/// positions, 4 heads) ran 1.41 times as fast so, a head's 64 rows at a time, attention's
/// forward 1.09 and 1.10, with the same bits: every number goes through the same operations
/// as row by row. Attention now hands it one row tile's rows at a time (`HeadProducts`).
@inline(__always)
func causalSoftmax<T: KernelScalar>(
  _ scores: UnsafeMutablePointer<T>, rowStride: Int, rows: Range<Int>, length t: Int, scale: T
) {
  // A row's exponentials are computed in whole vectors, as far as the row goes: the numbers
  // past the visible ones in its last vector (unused; a skipped tile's never computed) are
  // set to zero, exponentiated with the rest and zeroed again at the end. So no short
  // vector is copied lane by lane (attention's forward and backward 1.10 to 1.21 times as
  // fast at 16, 17 and 64 positions, AMD EPYC Zen 3, in turns), and the visible numbers
  // keep their bits (`exp` works lane by lane).
  let lanes = Vector<T>.scalarCount
  /// Where row `row`'s last vector ends: its `row + 1` visible numbers rounded up to whole
  /// vectors, within the row.
  func vectorEnd(_ row: Int) -> Int { min(t, (row + lanes) / lanes * lanes) }
  withUnsafeTemporaryAllocation(of: T.self, capacity: rows.count) { shifts in
    for r in rows {
      let row = scores + r * rowStride
      shifts[r - rows.lowerBound] = contiguousMax(row, r + 1) * scale
      for s in 0...r { row[s] *= scale }
      for s in (r + 1)..<vectorEnd(r) { row[s] = 0 }
    }
    for r in rows {
      let row = scores + r * rowStride
      exponentiate(row, minus: shifts[r - rows.lowerBound], into: row, count: vectorEnd(r))
    }
    for r in rows {
      let row = scores + r * rowStride
      let inverse = 1 / contiguousSum(row, r + 1)
      for s in 0...r { row[s] *= inverse }
      for s in (r + 1)..<t { row[s] = 0 }
    }
  }
}

private func attentionBackward<T: KernelScalar>(
  _ q: UnsafePointer<T>, _ k: UnsafePointer<T>, _ v: UnsafePointer<T>,
  _ probabilities: UnsafePointer<T>, _ dOut: UnsafePointer<T>, _ layout: HeadLayout,
  _ scale: Double, _ dq: UnsafeMutablePointer<T>, _ dk: UnsafeMutablePointer<T>,
  _ dv: UnsafeMutablePointer<T>, _ kernel: MatmulKernel
) {
  let head = HeadProducts<T>(layout, kernel: kernel)
  parallelFor(layout.batch * layout.heads) { task in
    head.backward(
      task, q, k, v, probabilities: probabilities + task * layout.length * layout.length,
      gradient: dOut, scale: T(scale), dq: dq, dk: dk, dv: dv)
  }
}

extension HeadProducts {
  /// `dV = Pᵀ·dO`, `dP = dO·Vᵀ`, `dS = P ⊙ (dP − ⟨dP, P⟩) · scale`, `dQ = dS·K`,
  /// `dK = dSᵀ·Q` for one (sequence, head). A transposed A (`Pᵀ`, `dSᵀ`) is read in place,
  /// a tile's rows being adjacent numbers of each row of P or dS.
  func backward(
    _ task: Int, _ q: UnsafePointer<T>, _ k: UnsafePointer<T>, _ v: UnsafePointer<T>,
    probabilities p: UnsafePointer<T>, gradient dOut: UnsafePointer<T>, scale: T,
    dq: UnsafeMutablePointer<T>, dk: UnsafeMutablePointer<T>, dv: UnsafeMutablePointer<T>
  ) {
    withBuffers(task: task) { buffers, base in
      let (ds, values, copies, strip, edge) = (
        buffers.scores, buffers.transposed, buffers.copies, buffers.strip, buffers.edge
      )
      let tiles = paddedLength / tileRows
      transposed(v + base, into: values)
      // dP = dO·Vᵀ, then through the softmax: dS = P ⊙ (dP − ⟨dP, P⟩) · scale.
      for tile in 0..<tiles {
        let first = tile * tileRows
        let visible = min(t, first + tileRows)
        let (a, aStrides) = rowsOfA(
          dOut + base, tile: tile, rows: visible - first, strip: strip)
        multiply(
          depth: d, a: a, aStrides: aStrides, b: values, bRowStride: scoreStride,
          c: ds + first * scoreStride, cRowStride: scoreStride, rows: tileRows,
          columns: scoreStride, width: visible, edge: edge)
        for row in first..<visible {
          let (dRow, pRow) = (ds + row * scoreStride, p + row * t)
          let dot = contiguousDot(UnsafePointer(dRow), pRow, row + 1)
          for s in 0...row { dRow[s] = pRow[s] * (dRow[s] - dot) * scale }
          for s in (row + 1)..<t { dRow[s] = 0 }
        }
      }
      let (keys, keyStride) = columnsOfB(k + base, copy: copies)
      let (queries, queryStride) = columnsOfB(q + base, copy: copies + t * sizeStride)
      let (gradients, gradientStride) = columnsOfB(
        dOut + base, copy: copies + 2 * t * sizeStride)
      for tile in 0..<tiles {
        let first = tile * tileRows
        let (visible, rows) = (min(t, first + tileRows), min(tileRows, t - first))
        // dQ = dS·K: each chain stops at the tile's last diagonal number (dS is zero after).
        multiply(
          depth: visible, a: ds + first * scoreStride, aStrides: (scoreStride, 1),
          b: keys, bRowStride: keyStride, c: dq + base + first * ld, cRowStride: ld,
          rows: rows, columns: d, width: d, edge: edge)
        // dK = dSᵀ·Q and dV = Pᵀ·dO: the chains start at the tile's first row (dS and P are
        // zero above the diagonal). A tile's rows of Pᵀ are read in place but the last,
        // partial one, which would read past P: it is copied, zero-padded.
        multiply(
          depth: t - first, a: ds + first * scoreStride + first, aStrides: (1, scoreStride),
          b: queries + first * queryStride, bRowStride: queryStride, c: dk + base + first * ld,
          cRowStride: ld, rows: rows, columns: d, width: d, edge: edge)
        var transposedP = (a: p + first * t + first, stride: t)
        if rows < tileRows {
          for r in first..<t {
            for i in 0..<tileRows {
              strip[(r - first) * tileRows + i] = i < rows ? p[r * t + first + i] : 0
            }
          }
          transposedP = (UnsafePointer(strip), tileRows)
        }
        multiply(
          depth: t - first, a: transposedP.a, aStrides: (1, transposedP.stride),
          b: gradients + first * gradientStride, bRowStride: gradientStride,
          c: dv + base + first * ld, cRowStride: ld, rows: rows, columns: d, width: d,
          edge: edge)
      }
    }
  }
}
