import Foundation
import Synchronization

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
/// Setting the environment variable `TINYMIXER_SIMULATE_FULL_DISK` makes writes fail as on
/// a full disk, after the temporary file is made: set to a whole number N, the N-th write of
/// the process and every later one; set to anything else, every write. The tests use it to
/// check that a failed write leaves nothing behind, and that a folder whose second file
/// fails keeps its old contents.
public func writeAtomically(_ data: Data, to url: URL) throws {
  let folder = url.deletingLastPathComponent()
  let temporary = folder.appendingPathComponent(
    ".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).tmp")
  do {
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    try data.write(to: temporary)
    if simulatingFullDisk() {
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

/// The writes this process has made, counted for `TINYMIXER_SIMULATE_FULL_DISK`.
private let writesMade = Atomic<Int>(0)

/// Whether this write fails as on a full disk (see `writeAtomically`).
private func simulatingFullDisk() -> Bool {
  guard let setting = ProcessInfo.processInfo.environment["TINYMIXER_SIMULATE_FULL_DISK"] else {
    return false
  }
  let write = writesMade.add(1, ordering: .relaxed).newValue
  return write >= (Int(setting) ?? 1)
}

/// Writes a folder as a whole: `write` fills a temporary sibling folder, which then takes
/// `folder`'s place by renaming. The old folder stays as it was until the new one is
/// complete, and is removed only then, so a failure at any file leaves either the old
/// folder or the new one, never a mix (and no temporary folder). Errors name the files as
/// they would be in `folder`.
public func replaceFolder(_ folder: URL, with write: (URL) throws -> Void) throws {
  let manager = FileManager.default
  let parent = folder.deletingLastPathComponent()
  let tag = "\(folder.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier)"
  let fresh = parent.appendingPathComponent(".\(tag).new")
  let old = parent.appendingPathComponent(".\(tag).old")
  func failure(_ reason: String) -> FileWriteError {
    try? manager.removeItem(at: fresh)
    return FileWriteError(path: folder.path, reason: reason)
  }
  try? manager.removeItem(at: fresh)
  do {
    try manager.createDirectory(at: fresh, withIntermediateDirectories: true)
    try write(fresh)
  } catch let error as FileWriteError {
    try? manager.removeItem(at: fresh)
    throw FileWriteError(
      path: error.path.replacingOccurrences(of: fresh.path, with: folder.path),
      reason: error.reason)
  } catch { throw failure(systemReason(error)) }
  let existed = manager.fileExists(atPath: folder.path)
  if existed && rename(folder.path, old.path) != 0 {
    throw failure(String(cString: strerror(errno)))
  }
  if rename(fresh.path, folder.path) != 0 {
    let reason = String(cString: strerror(errno))
    if existed { rename(old.path, folder.path) }
    throw failure(reason)
  }
  if existed { try? manager.removeItem(at: old) }
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
