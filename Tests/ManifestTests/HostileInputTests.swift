import CoordinatorTesting
import Foundation
import Manifest
import Testing

/// 10,000 seeded mutations of valid manifests: none may crash or hang the checker, every
/// mutation that necessarily breaks a manifest must be reported, and no message may echo a
/// huge input back.
@Suite struct HostileInputTests {
    static func validInputs() throws -> [[UInt8]] {
        [
            try SampleManifests.sampleWithCertificates(),
            try SampleManifests.withUniqueID("helloworld.json"),
            try SampleManifests.withUniqueID("gramine-nginx.json"),
            try SampleManifests.withUniqueID("occlum-hello.json"),
            RuleFixture.bytes(RuleFixture.base()),
        ]
    }

    enum Mutation: String, CaseIterable {
        case byteFlip, truncation, deepNesting, hugeString, largeString, structuralDelete
    }

    @Test func tenThousandMutationsNeverCrashAndBreakingOnesAreReported() async throws {
        let inputs = try Self.validInputs()
        for input in inputs { #expect(ManifestDocument.parse(input).isValid) }
        var random = SeededRandom(state: 0x5EED_2026)
        var counts: [Mutation: (total: Int, withErrors: Int)] = [:]
        let plan: [(Mutation, Int)] = [
            (.byteFlip, 6_000), (.truncation, 2_000), (.deepNesting, 1_000), (.structuralDelete, 940),
            (.hugeString, 50), (.largeString, 10),
        ]
        var index = 0
        for (mutation, count) in plan {
            for _ in 0..<count {
                // Yields so that this long loop shares the test run's few threads.
                await Task.yield()
                index += 1
                let input = inputs[Int.random(in: 0..<inputs.count, using: &random)]
                let mutated = Self.mutate(input, mutation, using: &random)
                let document = ManifestDocument.parse(mutated)
                for problem in document.problems where problem.message.utf8.count > 1_000 {
                    Issue.record(
                        "mutation \(index) (\(mutation)): a \(problem.message.utf8.count)-byte message at \(problem.path)"
                    )
                }
                let hasErrors = !document.errors.isEmpty
                counts[mutation, default: (0, 0)].total += 1
                if hasErrors { counts[mutation, default: (0, 0)].withErrors += 1 }
                switch mutation {
                case .truncation, .deepNesting, .hugeString, .structuralDelete:
                    #expect(hasErrors, "mutation \(index) (\(mutation)) was accepted")
                case .byteFlip, .largeString:
                    // A flip inside free text can leave a valid manifest; then the verdict must be
                    // stable and the model must survive a round trip.
                    if !hasErrors, let manifest = document.manifest {
                        #expect(ManifestDocument.parse(manifest.jsonValue.serialized()).manifest == manifest)
                    }
                }
            }
        }
        for mutation in Mutation.allCases {
            let (total, withErrors) = counts[mutation] ?? (0, 0)
            print("hostile input: \(mutation.rawValue): \(withErrors) of \(total) rejected")
        }
        #expect(counts.values.reduce(0) { $0 + $1.total } == 10_000)
        // Most single-byte flips land in structure, names or identifiers and must be caught.
        let flips = try #require(counts[.byteFlip])
        #expect(flips.withErrors * 2 > flips.total)
    }

    static func mutate(_ input: [UInt8], _ mutation: Mutation, using random: inout SeededRandom) -> [UInt8] {
        var bytes = input
        switch mutation {
        case .byteFlip:
            let position = Int.random(in: 0..<bytes.count, using: &random)
            bytes[position] ^= UInt8(1 << Int.random(in: 0..<8, using: &random))
        case .truncation:
            // Cut before the final '}', so the document can never be complete.
            let end = bytes.lastIndex(of: UInt8(ascii: "}")) ?? bytes.count
            bytes = Array(bytes[0..<Int.random(in: 0..<end, using: &random)])
        case .deepNesting:
            let depth = Int.random(in: 65...20_000, using: &random)
            let position = valuePosition(in: bytes, using: &random)
            let open = Bool.random(using: &random) ? Array("[".utf8) : Array("{\"a\":".utf8)
            let close = open.count == 1 ? Array("]".utf8) : Array("}".utf8)
            let nested =
                Array(repeating: open, count: depth).flatMap { $0 } + Array("1".utf8)
                + Array(repeating: close, count: depth).flatMap { $0 }
            bytes.replaceSubrange(position..<position, with: nested + Array(",".utf8))
            bytes = Array(bytes.prefix(position)) + Array("\"n\":".utf8) + Array(bytes[position...])
        case .hugeString, .largeString:
            let size = mutation == .hugeString ? 10 << 20 : Int.random(in: (1 << 20)...(7 << 20), using: &random)
            let position = valuePosition(in: bytes, using: &random)
            let member =
                Array("\"UniqueID\":\"".utf8) + [UInt8](repeating: UInt8(ascii: "f"), count: size) + Array("\",".utf8)
            bytes.replaceSubrange(position..<position, with: member)
        case .structuralDelete:
            let structural = structuralPositions(in: bytes)
            bytes.remove(at: structural[Int.random(in: 0..<structural.count, using: &random)])
        }
        return bytes
    }

    /// Positions of JSON punctuation outside string contents (quotes included): deleting any
    /// one of them leaves a document that is not JSON.
    static func structuralPositions(in bytes: [UInt8]) -> [Int] {
        var positions: [Int] = []
        var inString = false
        var escaped = false
        for (index, byte) in bytes.enumerated() {
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                    positions.append(index)
                }
            } else if byte == UInt8(ascii: "\"") {
                inString = true
                positions.append(index)
            } else if "{}[]:".utf8.contains(byte) {
                positions.append(index)
            }
        }
        return positions
    }

    /// A position right after a random '{', where a new member may be inserted.
    static func valuePosition(in bytes: [UInt8], using random: inout SeededRandom) -> Int {
        let openings = bytes.indices.filter { bytes[$0] == UInt8(ascii: "{") }
        return openings[Int.random(in: 0..<openings.count, using: &random)] + 1
    }
}
