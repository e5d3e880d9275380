import Foundation

/// Writes `data` to `url` through a temporary file in the same folder, renamed into place,
/// so a reader never sees a half-written file and an interrupted write leaves the old one.
public func writeAtomically(_ data: Data, to url: URL) throws {
  let folder = url.deletingLastPathComponent()
  try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
  let temporary = folder.appendingPathComponent(
    ".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).tmp")
  do {
    try data.write(to: temporary)
    if rename(temporary.path, url.path) != 0 {
      throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path])
    }
  } catch {
    try? FileManager.default.removeItem(at: temporary)
    throw error
  }
}
