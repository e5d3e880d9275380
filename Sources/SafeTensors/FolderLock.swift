import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// An output folder already being written by another process.
public struct FolderInUseError: Error, CustomStringConvertible, Equatable {
  /// The folder.
  public let path: String
  /// The process that holds it, as it recorded itself.
  public let holder: String

  public var description: String {
    "\(path) is being written by process \(holder); wait for it to finish or choose another folder"
  }
}

/// Holds an output folder for this process while it trains what goes there, so that two
/// runs into one folder cannot silently lose one result. The lock is an advisory `flock`
/// on a file beside the folder (the folder itself is replaced whole when written), so the
/// system releases it when the process ends, however it ends; the file is removed when the
/// lock is released.
public final class FolderLock {
  let file: URL
  let descriptor: Int32

  /// Takes `folder`'s lock, or throws `FolderInUseError` naming the process that has it.
  public init(_ folder: URL) throws {
    let standard = folder.standardizedFileURL
    file = standard.deletingLastPathComponent().appendingPathComponent(
      ".\(standard.lastPathComponent).lock")
    do {
      try FileManager.default.createDirectory(
        at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
    } catch { throw FileWriteError(path: folder.path, reason: systemReason(error)) }
    descriptor = open(file.path, O_RDWR | O_CREAT, 0o644)
    guard descriptor >= 0 else {
      throw FileWriteError(path: file.path, reason: String(cString: strerror(errno)))
    }
    guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
      let holder = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
      close(descriptor)
      throw FolderInUseError(
        path: folder.path, holder: holder.isEmpty ? "(unknown)" : holder)
    }
    let me = Data("\(ProcessInfo.processInfo.processIdentifier)".utf8)
    _ = ftruncate(descriptor, 0)
    _ = me.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
  }

  /// Releases the lock and removes its file.
  deinit {
    unlink(file.path)
    flock(descriptor, LOCK_UN)
    close(descriptor)
  }
}
