import Foundation
import Kernels

bufferStandardOutputByLine()
keepFreedMemoryForReuse()
backHeapWithHugePages()
exit(runTool(Array(CommandLine.arguments.dropFirst())))
