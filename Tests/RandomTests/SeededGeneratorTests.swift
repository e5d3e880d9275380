import Random
import Testing

@Test func seededGeneratorIsReproducible() {
  var a = SeededGenerator(seed: 42)
  var b = SeededGenerator(seed: 42)
  var c = SeededGenerator(seed: 43)
  let first = (0..<5).map { _ in a.next() }
  #expect(first == (0..<5).map { _ in b.next() })
  #expect(first != (0..<5).map { _ in c.next() })
  var g = SeededGenerator(seed: 1)
  let normals = (0..<20_000).map { _ in g.nextNormal() }
  let mean = normals.reduce(0, +) / 20_000
  let variance = normals.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 20_000
  #expect(abs(mean) < 0.03 && abs(variance - 1) < 0.05)
}

@Test func aBoundedIntegerStaysBelowItsBoundAndReachesEveryValue() {
  var g = SeededGenerator(seed: 5)
  for bound in [1, 2, 7, 1000] {
    let draws = (0..<20 * bound).map { _ in g.nextInt(below: bound) }
    #expect(draws.allSatisfy { (0..<bound).contains($0) })
    #expect(Set(draws).count == bound, "bound \(bound): not every value drawn")
  }
  let shuffled = g.shuffled(Array(0..<50))
  #expect(shuffled.sorted() == Array(0..<50))
  #expect(shuffled != Array(0..<50))
}
