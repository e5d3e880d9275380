import Foundation

// Exercise (README, "Exercise"): read a safetensors header without the SafeTensors module.
// Check it with: swift run lesson09-files-and-other-frameworks --exercise

/// Every tensor's name and its byte range in the data section (`data_offsets`), read from
/// the raw bytes of a safetensors file. As written it finds nothing.
func tensorRanges(_ file: Data) -> [(name: String, start: Int, end: Int)] {
  []
}
