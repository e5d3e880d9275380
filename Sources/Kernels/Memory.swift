#if canImport(Glibc)
  import Glibc
#endif

/// Asks the C allocator to keep freed memory for reuse instead of returning it to the
/// system. Call it once, at the start of a program that trains.
///
/// A training step allocates and frees hundreds of activation and gradient arrays of a
/// megabyte or more. By default glibc maps each such block fresh from the system and
/// unmaps it when freed, so every new array pays a page fault per 4 KiB. With this, freed
/// blocks stay in the heap and are reused. Other platforms' allocators need nothing.
///
/// The heap is not asked for 2 MiB pages (`madvise(MADV_HUGEPAGE)`, as it was from 23c2cfd
/// to 44794ea). On an AMD EPYC Zen 5 the mixture's step (AVX2 build) took 0.39 ms less so,
/// but on an Intel Xeon (Emerald Rapids) SwiGLU's forward took 4.0 to 4.7 ms of the base
/// model's step against 1.5 to 1.6 without them (`bench train-base --profile`, three runs
/// each in turns). Within a 2 MiB page the physical address follows the virtual one, so
/// arrays of a few MiB cut one after another from the heap hold their same elements at
/// addresses that map to the same sets of the level-2 cache, which is indexed by physical
/// address. A standalone probe of `swiglu` over three such arrays of 3 MiB, two threads:
/// 0.98 ms; the same with the arrays a few pages and lines further apart, 0.25; in 4 KiB
/// pages, whose physical addresses are scattered, 0.29.
public func keepFreedMemoryForReuse() {
  #if canImport(Glibc)
    // glibc's mallopt, looked up at run time: Swift's Glibc module does not expose malloc.h.
    typealias MallocOption = @convention(c) (Int32, Int32) -> Int32
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
    let mallopt = unsafeBitCast(symbol, to: MallocOption.self)
    let trimThreshold: Int32 = -1
    let mmapThreshold: Int32 = -3  // M_TRIM_THRESHOLD, M_MMAP_THRESHOLD
    _ = mallopt(mmapThreshold, 512 << 20)  // blocks up to 512 MiB come from the heap
    _ = mallopt(trimThreshold, Int32.max)  // and freed ones stay there
  #endif
}

/// Asks the CPU to start fetching the cache line at `address` in order to write it, and
/// returns at once (x86 `prefetchw`, arm64 `prfm pstl1keep`).
///
/// A matmul writes each tile of C after its whole chain of multiply-adds. When C is not in
/// the cache (a new array, as most outputs of a training step are) each of those writes
/// waits for its line to come from memory; asked for at the start of the tile, the lines
/// arrive while the tile computes. On the AMD EPYC Zen 4 (AVX-512 kernel, steps alternated
/// with and without in one process) the mixture step of the bench model ran 3 to 4% faster
/// and its products 4 to 7% in a quiet hour, and no differently when the machine was busy;
/// in the AVX2 build (`-target-cpu haswell`, whose write prefetch is a plain `prefetcht0`)
/// the products took 2 to 4% longer with it in three runs of four and 2% less in the
/// fourth, and the steps showed no difference beyond the noise (0.94 to 1.08).
/// Swift has no prefetch in its standard library, so this calls LLVM's `llvm.prefetch`
/// intrinsic by its name; the compiler turns the call into the one instruction.
@inline(__always)
func prefetchForWriting(_ address: UnsafeRawPointer) {
  llvmPrefetch(address, 1, 3, 1)  // write, keep in all cache levels, data
}

/// Asks the CPU to start fetching the cache line at `address` in order to read it, and
/// returns at once (x86 `prefetcht0`, arm64 `prfm pldl1keep`): for reads whose pattern the
/// hardware's own prefetcher does not learn (`TiledMatmul.fetchesRowsOfAAhead`).
@inline(__always)
func prefetchForReading(_ address: UnsafeRawPointer) {
  llvmPrefetch(address, 0, 3, 1)  // read, keep in all cache levels, data
}

@_silgen_name("llvm.prefetch.p0")
private func llvmPrefetch(
  _ address: UnsafeRawPointer, _ write: Int32, _ locality: Int32, _ cacheType: Int32)

/// Bytes in a cache line of x86-64 CPUs. (Apple's are 128: there every other fetch of a
/// row asks for a line already on its way, and costs one instruction.)
let cacheLineBytes = 64
