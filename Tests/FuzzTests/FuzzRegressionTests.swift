import CoordinatorTesting
import Foundation
import FuzzTargets
import Testing

/// Every fuzz target over its seeds and over every input a campaign found (Fuzz/Regressions/TARGET):
/// each once crashed, hung or broke an invariant, and must now be refused or accepted cleanly.
/// scripts/test also runs each libFuzzer build briefly (scripts/fuzz --ci).
@Suite struct FuzzRegressionTests {
    static let regressions = TestData.packageRoot.appendingPathComponent("Fuzz/Regressions")

    static func regressionFiles(_ target: String) -> [URL] {
        let directory = regressions.appendingPathComponent(target)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.sorted().map { directory.appendingPathComponent($0) }
    }

    @Test(arguments: FuzzTargets.all.map { $0.name })
    func everySeedAndFoundInputRunsCleanly(_ name: String) async throws {
        let type = try #require(FuzzTargets.named(name))
        let files = Self.regressionFiles(name)
        // A harness runs inputs synchronously (the activation target waits for the Coordinator):
        // on a thread of its own, never on one of the two cooperative threads.
        let (seeds, accepted) = try await Self.onOwnThread { () throws -> ([[UInt8]], Int) in
            let harness = try type.init()
            let seeds = try type.seeds().map(\.bytes)
            let accepted = seeds.filter { harness.run($0) }.count
            for file in files { harness.run(Array(try Data(contentsOf: file))) }
            return (seeds, accepted)
        }
        #expect(seeds.count >= 2, "a target starts from at least two real inputs")
        #expect(Set(seeds).count == seeds.count, "seeds are distinct")
        // A seed that passes every check shows the harness reaches the end of its path (a wrong
        // trust anchor or an expired pinned time would make every input fail early).
        #expect(accepted >= 1, "no seed of \(name) passes every check")
    }

    static func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }

    @Test func regressionFoldersNameRealTargets() throws {
        let folders = (try? FileManager.default.contentsOfDirectory(atPath: Self.regressions.path)) ?? []
        for folder in folders where !folder.hasPrefix(".") && folder != "README.md" {
            #expect(FuzzTargets.named(folder) != nil, "Fuzz/Regressions/\(folder) is not a target")
        }
    }
}
