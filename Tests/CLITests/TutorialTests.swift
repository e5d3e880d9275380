import Foundation
import Testing

#if canImport(FoundationXML)
  import FoundationXML
#endif

/// Every lesson folder under Tutorials/.
func lessonFolders() throws -> [String] {
  try FileManager.default.contentsOfDirectory(
    atPath: packageRoot.appendingPathComponent("Tutorials").path
  )
  .filter { $0.first?.isNumber == true }.sorted()
}

@Test func lessonOnePrintsWhatItsReadmeShows() throws {
  let readme = try packageFile("Tutorials/01-autodiff-from-scratch/README.md")
  let shown = try #require(codeBlock(after: "<!-- output -->", in: readme))
  let run = try runProduct("lesson01-autodiff", [])
  #expect(run.status == 0)
  #expect(sameOutput(run.output, shown), "lesson 01 prints:\n\(run.output)")
}

@Test func lessonTwoClimbsEveryRungAndAgreesWithTheTripleLoop() throws {
  let run = try runProduct("lesson02-fast-matmul", ["--sizes", "16,40"])
  #expect(run.status == 0)
  for rung in [
    "1 triple loop", "2 loop order i-p-j", "3 SIMD rows", "4 register blocking",
    "5 + 2 threads (Dispatch)", "6 + 2 threads (worker pool)",
  ] {
    #expect(run.output.contains(rung))
    let readme = try packageFile("Tutorials/02-fast-matmul/README.md")
    #expect(readme.contains(rung), "the README's table lacks rung \(rung)")
  }
  #expect(run.output.contains("every rung agrees with the triple loop: true"))
}

/// A code block marked `<!-- source: PATH -->` in a lesson must appear, verbatim, in PATH:
/// prose cannot quote code that no longer exists.
@Test func everyQuotedSourceBlockStillExists() throws {
  var quotes = 0
  for lesson in try lessonFolders() {
    let readme = try packageFile("Tutorials/\(lesson)/README.md")
    var rest = Substring(readme)
    while let marker = rest.range(of: "<!-- source: ") {
      let pathEnd = rest[marker.upperBound...].range(of: " -->")!
      let path = String(rest[marker.upperBound..<pathEnd.lowerBound])
      let block = try #require(
        codeBlock(after: "<!-- source: \(path) -->", in: String(rest[marker.lowerBound...])))
      let source = try packageFile(path)
      #expect(
        source.contains(block), "\(lesson)/README.md quotes code no longer in \(path):\n\(block)")
      quotes += 1
      rest = rest[pathEnd.upperBound...]
    }
  }
  #expect(quotes >= 5)
}

@Test func everyLessonHasAReadmeAndRunnableCode() throws {
  let lessons = try lessonFolders()
  #expect(lessons.count >= 2)
  for lesson in lessons {
    let files = try FileManager.default.contentsOfDirectory(
      atPath: packageRoot.appendingPathComponent("Tutorials/\(lesson)").path)
    #expect(files.contains("README.md"), "\(lesson) has no README.md")
    #expect(files.contains { $0.hasSuffix(".swift") }, "\(lesson) has no code")
  }
}

@Test func lessonThreeRunsEveryStep() throws {
  let run = try runProduct("lesson03-tiny-transformer", ["--quick"])
  #expect(run.status == 0, "\(run.error)")
  for step in 1...6 { #expect(run.output.contains("Step \(step):")) }
  #expect(run.output.contains("position 0 sees only itself, so its output is its own value: true"))
  #expect(run.output.contains("changing the last value leaves positions 0 to 2 unchanged: true"))
  let readme = try packageFile("Tutorials/03-tiny-transformer/README.md")
  let shown = try #require(codeBlock(after: "## Output", in: readme))
  // Everything before the training is the same in a quick run.
  let untilTraining = { (text: String) in text.components(separatedBy: "Step 6")[0] }
  #expect(sameOutput(untilTraining(run.output), untilTraining(shown)))
}

@Test func lessonFourRunsEveryStep() throws {
  let run = try runProduct("lesson04-lora", ["--quick"])
  #expect(run.status == 0, "\(run.error)")
  let readme = try packageFile("Tutorials/04-lora/README.md")
  let shown = try #require(codeBlock(after: "## Output", in: readme))
  let untilTraining = { (text: String) in text.components(separatedBy: "Step 4")[0] }
  #expect(sameOutput(untilTraining(run.output), untilTraining(shown)))
  #expect(run.output.contains("trained: 2176 numbers in 7 adapters"))
}

@Test(arguments: [
  "05-routing", "06-routing-specialization-loss", "08-reproducing-the-paper",
  "09-files-and-other-frameworks", "10-selective-scan-and-mamba",
])
func lessonsFiveSixEightNineAndTenPrintWhatTheirReadmesShow(_ lesson: String) throws {
  let readme = try packageFile("Tutorials/\(lesson)/README.md")
  let shown = try #require(codeBlock(after: "<!-- output -->", in: readme))
  let run = try runProduct("lesson\(lesson)", [])
  #expect(run.status == 0, "\(run.error)")
  #expect(sameOutput(run.output, shown), "lesson \(lesson) prints:\n\(run.output)")
}

/// Lesson 08 rebuilds one cell of the main table by hand; it must be the report's cell.
@Test func lessonEightRebuildsTheReportsNumbers() throws {
  let run = try runProduct("lesson08-reproducing-the-paper", [])
  let cell = try #require(
    line("  LoRA-Mixer on toy-gsm8k: ", in: run.output)?.split(separator: ": ").last)
  let report = try packageFile("Tutorials/08-reproducing-the-paper/report/report.md")
  let row = try #require(line("| LoRA-Mixer, tinymixer's default", in: report))
  // The row's cells: the method, then toy-sst2, toy-cola, toy-gsm8k, ...
  #expect(row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }[3] == cell)
}

@Test func lessonSevenRunsEveryStep() throws {
  let run = try runProduct("lesson07-lora-mixer-end-to-end", ["--quick"])
  #expect(run.status == 0, "\(run.error)")
  for step in 1...4 { #expect(run.output.contains("Step \(step):")) }
  #expect(run.output.contains("toy-cola: expert alone"))
  #expect(run.output.contains("toy-sst2 layer 0: first choice"))
  #expect(run.output.contains("own weight"))
}

/// Every lesson has an exercise (`exercise.swift`) whose check, `--exercise`, fails as the
/// exercise is handed out, so the check can fail; the solutions pass the same checks
/// (`ExerciseSolutions`). Each README says how to run it and where the solution is.
@Test func everyLessonsExerciseFailsItsCheckAsHandedOut() throws {
  for lesson in try lessonFolders() {
    let folder = "Tutorials/\(lesson)"
    #expect(
      FileManager.default.fileExists(
        atPath: packageRoot.appendingPathComponent("\(folder)/exercise.swift").path),
      "\(lesson) has no exercise.swift")
    let product = lesson.hasPrefix("01-") ? "lesson01-autodiff" : "lesson\(lesson)"
    let readme = try packageFile("\(folder)/README.md")
    #expect(readme.contains("## Exercise"), "\(lesson)'s README has no exercise")
    #expect(readme.contains("swift run \(product) --exercise"), "\(lesson)'s README")
    #expect(readme.contains("../Exercises/Solutions/Solutions.swift"), "\(lesson)'s README")
    let run = try runProduct(product, ["--exercise"])
    #expect(run.status == 1, "\(lesson): \(run.output)")
    #expect(run.output.contains("  not yet  "), "\(lesson): \(run.output)")
  }
}

/// The lessons' pictures are what their code draws today: each lesson draws its picture
/// again from the real objects (`--diagram FILE`), and it must be the committed file,
/// byte for byte, and well-formed SVG the lesson's README shows.
@Test(arguments: [
  ("lesson01-autodiff", "01-autodiff-from-scratch", "tape.svg"),
  ("lesson02-fast-matmul", "02-fast-matmul", "register-tile.svg"),
  ("lesson05-routing", "05-routing", "routed-site.svg"),
  ("lesson07-lora-mixer-end-to-end", "07-lora-mixer-end-to-end", "mixture.svg"),
])
func everyLessonPictureIsWhatItsCodeDraws(_ product: String, _ lesson: String, _ file: String)
  throws
{
  let drawn = FileManager.default.temporaryDirectory.appendingPathComponent(
    "\(UUID().uuidString)-\(file)")
  defer { try? FileManager.default.removeItem(at: drawn) }
  let run = try runProduct(product, ["--diagram", drawn.path])
  #expect(run.status == 0, "\(run.error)")
  let committed = packageRoot.appendingPathComponent("Tutorials/\(lesson)/\(file)")
  let data = try Data(contentsOf: drawn)
  #expect(
    data == (try Data(contentsOf: committed)),
    "Tutorials/\(lesson)/\(file) is not what the code draws: run `swift run \(product) --diagram Tutorials/\(lesson)/\(file)`"
  )
  #if canImport(FoundationXML) || os(macOS)
    #expect(XMLParser(data: data).parse(), "\(file) is not well-formed XML")
  #endif
  #expect(try packageFile("Tutorials/\(lesson)/README.md").contains("](\(file))"))
}

/// Every link in the README and the lessons stays inside the repository and reaches a file
/// that exists (web addresses aside), and every lesson that cites the paper links the paper
/// page.
@Test func everyLinkStaysInTheRepositoryAndReachesAFile() throws {
  let tutorials = packageRoot.appendingPathComponent("Tutorials")
  let pages =
    ["README.md"]
    + (FileManager.default.subpaths(atPath: tutorials.path) ?? []).filter { $0.hasSuffix(".md") }
    .map { "Tutorials/\($0)" }
  let root = packageRoot.standardizedFileURL.path
  for page in pages {
    let text = try packageFile(page)
    let folder = packageRoot.appendingPathComponent(page).deletingLastPathComponent()
    for link in text.components(separatedBy: "](").dropFirst() {
      guard let end = link.firstIndex(of: ")") else { continue }
      let target = String(link[..<end]).split(separator: "#", omittingEmptySubsequences: false)[0]
      if target.hasPrefix("https://") || target.isEmpty { continue }
      let resolved = folder.appendingPathComponent(String(target)).standardizedFileURL.path
      #expect(resolved.hasPrefix(root + "/"), "\(page) links \(target), outside the repository")
      #expect(
        FileManager.default.fileExists(atPath: resolved),
        "\(page) links \(target), which is missing")
    }
  }
  for lesson in try lessonFolders() {
    let readme = try packageFile("Tutorials/\(lesson)/README.md")
    if readme.localizedCaseInsensitiveContains("the paper") {
      #expect(readme.contains("](../the-paper.md"), "\(lesson) cites the paper without linking it")
    }
  }
  #expect(try packageFile("README.md").contains("](Tutorials/the-paper.md)"))
}
