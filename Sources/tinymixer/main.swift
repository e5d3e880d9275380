import Foundation
import Kernels

bufferStandardOutputByLine()
keepFreedMemoryForReuse()
exit(runTool(Array(CommandLine.arguments.dropFirst())))
