#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Darwin)
  @preconcurrency import Darwin
#endif
import Foundation
import Kernels

// One line at a time even into a file or a pipe, so that a long run's log can be followed.
setvbuf(stdout, nil, _IOLBF, 0)
keepFreedMemoryForReuse()
exit(runTool(Array(CommandLine.arguments.dropFirst())))
