import CoordinatorTesting
import Foundation
import Testing

/// README's quickstart, run as a test: `Examples/emojivoto/run --once` with the binaries built
/// beside the tests. The script checks each step itself and exits non-zero on the first
/// failure; this test also reads what it left behind.
@Suite struct EmojiVotoDemoTests {
    @Test func threeMarblesAndNginxRunVerifiedAndVotesAreCountedOverMutualTLS() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("emojivoto-\(UUID().uuidString)")
        let script = TestData.packageRoot.appendingPathComponent("Examples/emojivoto/run")
        let binaries = CoordinatorProcess.product("coordinator").deletingLastPathComponent()
        // Six ports above the Coordinator tests' ranges and below Linux's ephemeral range.
        let base = 31_000 + 6 * Int.random(in: 0..<280)
        let run = try await ProcessRunner.run(
            URL(fileURLWithPath: "/usr/bin/env"),
            [
                "EMOJIVOTO_BIN=\(binaries.path)", "EMOJIVOTO_DIR=\(directory.path)", "EMOJIVOTO_PORT_BASE=\(base)",
                script.path, "--once",
            ])
        #expect(run.status == 0, "stdout:\n\(run.stdout)\nstderr:\n\(run.stderr)")
        for marble in ["emoji", "voting", "web", "nginx"] {
            #expect(run.stdout.contains("ok: \(marble) activated"), "\(run.stdout)")
            let uuidFile = directory.appendingPathComponent("\(marble)/uuid")
            let mode = try FileManager.default.attributesOfItem(atPath: uuidFile.path)[.posixPermissions] as? NSNumber
            #expect(mode?.intValue == 0o600, "\(marble)'s UUID file")
        }
        #expect(run.stdout.contains("ok: Coordinator quote verified"))
        #expect(run.stdout.contains("voting refuses a client without a certificate: curl: (56)"))
        #expect(run.stdout.contains("voting refuses a self-made client certificate: curl: (56)"))
        #expect(run.stdout.contains("nginx verified with the cluster root; without it curl refuses"))

        struct Entry: Decodable { var shortcode: String, votes: Int }
        let board = try JSONDecoder().decode(
            [Entry].self, from: Data(contentsOf: directory.appendingPathComponent("leaderboard.json")))
        #expect(board.map(\.shortcode) == [":doughnut:", ":rocket:", ":crab:"])
        #expect(board.map(\.votes) == [3, 2, 1])
        // nginx's key came from the manifest's secret, written 0600 by the launcher.
        let key = directory.appendingPathComponent("nginx/conf/server.key")
        let mode = try FileManager.default.attributesOfItem(atPath: key.path)[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o600)
        try? FileManager.default.removeItem(at: directory)
    }
}
