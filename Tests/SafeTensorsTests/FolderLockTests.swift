import Foundation
import Testing

@testable import SafeTensors

@Test func anOutputFolderIsHeldByOneWriterAtATime() throws {
  let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
    "locked-\(UUID().uuidString)/out")
  defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
  do {
    let first = try FolderLock(folder)
    // A second holder (another open file, as another process would have) is refused, told
    // which process holds the folder.
    let error = #expect(throws: FolderInUseError.self) { _ = try FolderLock(folder) }
    #expect(error?.holder == "\(ProcessInfo.processInfo.processIdentifier)")
    #expect(error?.description.hasPrefix("\(folder.path) is being written by process ") == true)
    withExtendedLifetime(first) {}
  }
  // Released: the next writer takes it (this would throw if the lock were still held), and
  // nothing is left beside the folder once it lets go.
  _ = try FolderLock(folder)
  #expect(
    try FileManager.default.contentsOfDirectory(atPath: folder.deletingLastPathComponent().path)
      .isEmpty)
}
