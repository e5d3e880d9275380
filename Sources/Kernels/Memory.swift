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
