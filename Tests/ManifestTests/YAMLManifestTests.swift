import Foundation
import JSONText
import Manifest
import Testing

/// YAML manifests from someone we do not trust: nesting and aliases are bounded before anything
/// recurses over the document.
@Suite struct YAMLManifestTests {
    private func problem(_ text: String) -> ManifestProblem? {
        ManifestDocument.parse(Array(text.utf8)).errors.first
    }

    /// Nesting far beyond the limit, in every form YAML has. Before the depth was measured on
    /// libyaml's events, Yams' composer recursed once per level and the first of these (the
    /// fuzzer's find, `Fuzz/Regressions/manifest/yaml-flow-nesting-stack-overflow`) overflowed
    /// the stack.
    static let deep: [(String, String)] = [
        ("flow sequences", "Packages: " + String(repeating: "[", count: 200_000)),
        ("flow mappings", "Packages: " + String(repeating: "{a: ", count: 100_000)),
        (
            "closed flow sequences",
            "a: " + String(repeating: "[", count: 50_000) + String(repeating: "]", count: 50_000)
        ),
        ("compact block sequences", "a:\n" + String(repeating: "- ", count: 50_000) + "x\n"),
        ("indented block mappings", (0..<1_000).map { String(repeating: " ", count: $0) + "k:\n" }.joined() + "\n"),
    ]

    @Test(arguments: deep.map(\.0))
    func nestingBeyondTheLimitIsRefusedWithoutRecursing(form: String) throws {
        let text = try #require(Self.deep.first { $0.0 == form }?.1)
        let found = try #require(problem(text))
        #expect(found.code == .syntax)
        #expect(found.message.contains("nesting deeper than 64 levels"), "\(found.message)")
    }

    @Test func nestingWithinTheLimitIsRead() throws {
        let text = "a: " + String(repeating: "[", count: 60) + "1" + String(repeating: "]", count: 60)
        let document = ManifestDocument.parse(Array(text.utf8))
        #expect(document.format == .yaml)
        #expect(!document.problems.contains { $0.code == .syntax })
        #expect(String(decoding: document.jsonBytes, as: UTF8.self).contains(String(repeating: "[", count: 60) + "1"))
    }

    @Test func aliasesThatExpandBeyondTheNodeBudgetAreRefused() throws {
        var lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        for level in 1...9 {
            let previous = "*a\(level - 1)"
            lines.append("a\(level): &a\(level) [\(Array(repeating: previous, count: 10).joined(separator: ", "))]")
        }
        let found = try #require(problem(lines.joined(separator: "\n")))
        #expect(found.message.contains("more than 200000 nodes"), "\(found.message)")
    }

    @Test func malformedYAMLNamesTheLine() throws {
        let found = try #require(problem("Packages:\n  app: [1, 2\nMarbles: {}\n"))
        #expect(found.code == .syntax)
        #expect(found.message.contains("line"), "\(found.message)")
    }

    /// YAML 1.1's base-60 integers ("190:20:30"): Yams computes them without overflow checks
    /// and trapped on the fuzzer's "-222220222222220222:2"
    /// (`Fuzz/Regressions/manifest/yaml-sexagesimal-int-overflow`). They stay text, as MarbleRun's
    /// YAML reader (go-yaml) keeps them.
    @Test(arguments: ["-222220222222220222:2", "190:20:30", "99999999999999999999:59:59"])
    func baseSixtyIntegersStayText(text: String) throws {
        let document = ManifestDocument.parse(Array("Packages:\n  app:\n    ProductID: \(text)\n".utf8))
        let value = try JSONParser().parse(document.jsonBytes)
        #expect(value["Packages"]?["app"]?["ProductID"] == .string(text))
    }
}
