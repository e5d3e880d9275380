import Foundation
import Kernels

keepFreedMemoryForReuse()
exit(runTool(Array(CommandLine.arguments.dropFirst())))
