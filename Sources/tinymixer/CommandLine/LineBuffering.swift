import Experiments

#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Darwin)
  @preconcurrency import Darwin
#endif

/// Makes standard output write one line at a time even into a file or a pipe (C's default
/// there is a block of several kilobytes), so that a long run's log can be followed as it
/// grows. (`@preconcurrency`: the C `stdout` is a global the compiler cannot prove safe.)
func bufferStandardOutputByLine() {
  setvbuf(stdout, nil, _IOLBF, 0)
}
