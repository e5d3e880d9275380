import Foundation
import Testing

/// The modules in the order of the course: each may import only modules before it.
/// (`SafeTensors` imports nothing, so it sits first, beside the chain.)
let moduleChain = [
  "SafeTensors", "Random", "Kernels", "Autodiff", "NN", "ToyTasks", "Training", "LoRAMixer",
  "Experiments", "tinymixer",
]

/// The modules `import`ed by the Swift files under `folder` (the toolchain's own left out).
func importedModules(under folder: URL) throws -> Set<String> {
  let files = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: nil)!
    .compactMap { $0 as? URL }.filter { $0.pathExtension == "swift" }
  var modules = Set<String>()
  for file in files {
    for line in try String(contentsOf: file, encoding: .utf8).split(separator: "\n")
    where line.hasPrefix("import ") {
      modules.insert(String(line.dropFirst("import ".count)))
    }
  }
  return modules.subtracting(["Foundation", "Dispatch", "Synchronization"])
}

@Test func noModuleImportsOneAboveItInTheChain() throws {
  let sources = packageRoot.appendingPathComponent("Sources")
  let present = try FileManager.default.contentsOfDirectory(atPath: sources.path)
  #expect(Set(present) == Set(moduleChain), "a module is missing from the chain")
  for (rank, module) in moduleChain.enumerated() {
    let imported = try importedModules(under: sources.appendingPathComponent(module))
    let above = imported.filter { (moduleChain.firstIndex(of: $0) ?? rank) >= rank }
    #expect(above.isEmpty, "\(module) imports \(above.sorted()), at or above it in the chain")
  }
}

@Test func lessonThreeTrainsATransformerWithoutTheMixtureModule() throws {
  let lesson = packageRoot.appendingPathComponent("Tutorials/03-tiny-transformer")
  let imported = try importedModules(under: lesson)
  #expect(imported.contains("Training"))
  #expect(!imported.contains("LoRAMixer"))
}
