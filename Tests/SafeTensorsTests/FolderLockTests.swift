import Foundation
import Testing

@testable import SafeTensors

@Test func anOutputFolderIsHeldByOneWriterAtATime() throws {
  let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
    "locked-\(UUID().uuidString)/out")
  defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
  var first: FolderLock? = try FolderLock(folder)
  // A second holder (another open file, as another process would have) is refused, told
  // which process holds the folder.
  let error = #expect(throws: FolderInUseError.self) { _ = try FolderLock(folder) }
  #expect(error?.holder == "\(ProcessInfo.processInfo.processIdentifier)")
  #expect(error?.description.hasPrefix("\(folder.path) is being written by process ") == true)
  first = nil
  // Released: the next writer takes it, and nothing is left beside the folder afterwards.
  var second: FolderLock? = try FolderLock(folder)
  #expect(second != nil)
  second = nil
  #expect(
    try FileManager.default.contentsOfDirectory(atPath: folder.deletingLastPathComponent().path)
      .isEmpty)
  _ = first
}
