// libFuzzer entry point for the SafeTensors module's readers, compiled together with
// Sources/SafeTensors by run.sh. The target is chosen by FUZZ_TARGET: "safetensors" (the
// whole-file parser) or "json" (the strict JSON reader under the header and the configs).

import Foundation

let target = ProcessInfo.processInfo.environment["FUZZ_TARGET"] ?? "safetensors"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
  let data = Data(bytes: start, count: count)
  switch target {
  case "json": _ = try? JSON.parse(data)
  default: _ = try? SafeTensorsFile.parse(data)
  }
  return 0
}
