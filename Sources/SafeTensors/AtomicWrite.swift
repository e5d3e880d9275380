import Foundation

/// A file that could not be written, and why.
public struct FileWriteError: Error, CustomStringConvertible {
  /// The file that was to be written.
  public let path: String
  /// Why it was not: the system's reason.
  public let reason: String

  public var description: String { "cannot write \(path): \(reason)" }
}

/// Writes `data` to `url` through a temporary file in the same folder, renamed into place,
/// so a reader never sees a half-written file and an interrupted write leaves the old one.
///
/// Setting the environment variable `TINYMIXER_SIMULATE_FULL_DISK` makes every write fail
/// as on a full disk, after the temporary file is made: the tests use it to check that a
/// failed write leaves nothing behind.
public func writeAtomically(_ data: Data, to url: URL) throws {
  let folder = url.deletingLastPathComponent()
  let temporary = folder.appendingPathComponent(
    ".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).tmp")
  do {
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    try data.write(to: temporary)
    if ProcessInfo.processInfo.environment["TINYMIXER_SIMULATE_FULL_DISK"] != nil {
      throw FileWriteError(
        path: url.path, reason: "no space left on device (simulated: TINYMIXER_SIMULATE_FULL_DISK)")
    }
    if rename(temporary.path, url.path) != 0 {
      throw FileWriteError(path: url.path, reason: String(cString: strerror(errno)))
    }
  } catch {
    try? FileManager.default.removeItem(at: temporary)
    if error is FileWriteError { throw error }
    throw FileWriteError(path: url.path, reason: systemReason(error))
  }
}

/// Checks that files can be written into `folder`, before the minutes of training whose
/// result would go there: the folder (and any missing parent) is made, a file written and
/// removed, and whatever this made is removed again, so the check leaves nothing behind.
public func checkWritable(_ folder: URL) throws {
  let manager = FileManager.default
  var created = folder.standardizedFileURL
  while !manager.fileExists(atPath: created.deletingLastPathComponent().path),
    created.path != "/"
  {
    created.deleteLastPathComponent()
  }
  let existed = manager.fileExists(atPath: folder.path)
  let probe = folder.appendingPathComponent(
    ".write-check.\(ProcessInfo.processInfo.processIdentifier)")
  defer {
    try? manager.removeItem(at: probe)
    if !existed { try? manager.removeItem(at: created) }
  }
  do {
    try manager.createDirectory(at: folder, withIntermediateDirectories: true)
    try Data().write(to: probe)
  } catch { throw FileWriteError(path: folder.path, reason: systemReason(error)) }
}

/// The system's reason for a file error from Foundation (`Not a directory`), without
/// Foundation's framing.
public func systemReason(_ error: Error) -> String {
  let nsError = error as NSError
  if let underlying = (nsError.userInfo[NSUnderlyingErrorKey] as? Error).map({ $0 as NSError }),
    underlying.domain == NSPOSIXErrorDomain
  {
    return String(cString: strerror(Int32(underlying.code)))
  }
  return nsError.localizedDescription
}
