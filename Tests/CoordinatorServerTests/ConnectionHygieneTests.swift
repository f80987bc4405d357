import CoordinatorTesting
import Foundation
import Testing

/// Connections that stall are closed within `--connection-timeout` on both listeners, while the
/// Coordinator keeps answering and activating: TCP connections that never start TLS, TLS
/// handshakes left half-done, an HTTP/1.1 request whose headers never end, and mutual-TLS HTTP/2
/// connections that send the preface and fall silent (`Tests/Support/stalled_connections.py`).
/// Before the timeout existed all of them stayed open for ever. (Few full TLS handshakes: they
/// cost CPU that the suites running beside this one need.)
@Suite struct ConnectionHygieneTests {
    struct Flood: Decodable {
        var opened: Int
        var closed: Int
        var still_open: Int
        var failed_to_open: Int
        var open_seconds: Double
        var last_close_seconds: Double
    }

    static func flood(port: Int, count: Int, mode: String, seconds: Int = 15, identity: [String] = []) async throws
        -> Flood
    {
        let script = TestData.packageRoot.appendingPathComponent("Tests/Support/stalled_connections.py").path
        let run = try await ProcessRunner.run(
            TestData.python, [script, "127.0.0.1", "\(port)", "\(count)", mode, "\(seconds)"] + identity)
        guard run.status == 0, let flood = try? JSONDecoder().decode(Flood.self, from: run.stdoutData) else {
            Issue.record("stalled_connections.py \(mode) on \(port): \(run.stdout) \(run.stderr)")
            return Flood(
                opened: 0, closed: 0, still_open: -1, failed_to_open: count, open_seconds: 0, last_close_seconds: 0)
        }
        return flood
    }

    @Test func stalledConnectionsAreClosedWithinTheTimeoutWhileMarblesActivate() async throws {
        let (coordinator, platform, enclave, _, rootFile) = try await CoordinatorBinaryTests.startedForPython(
            maxActivations: 10, extraArguments: ["--connection-timeout", "2"])
        // The mesh wants a client certificate before it speaks HTTP/2; any self-signed one will do.
        let key = coordinator.directory.appendingPathComponent("stalled.key").path
        let cert = coordinator.directory.appendingPathComponent("stalled.pem").path
        let made = try await ProcessRunner.run(
            URL(fileURLWithPath: "/usr/bin/openssl"),
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                "-out", cert, "-days", "1", "-subj", "/CN=stalled",
            ])
        try #require(made.status == 0, "\(made.stderr)")

        let (client, mesh) = (coordinator.clientPort, coordinator.meshPort)
        async let clientTCP = Self.flood(port: client, count: 1000, mode: "tcp")
        async let clientTLS = Self.flood(port: client, count: 500, mode: "tls")
        async let clientHTTP = Self.flood(port: client, count: 50, mode: "https")
        async let meshTCP = Self.flood(port: mesh, count: 1000, mode: "tcp")
        async let meshTLS = Self.flood(port: mesh, count: 500, mode: "tls")
        async let meshHTTP2 = Self.flood(port: mesh, count: 50, mode: "h2", identity: [cert, key])

        // Throughout, the client API answers and marbles activate.
        var answered = 0
        var activated = 0
        let marble = try TestMarble()
        for _ in 0..<4 {
            let status = try await coordinator.request("GET", "/api/v2/status")
            if status.status == 200 { answered += 1 }
            let activation = try await CoordinatorBinaryTests.pythonActivate(
                coordinator, rootFile: rootFile, marble: marble, quote: try marble.quote(platform, enclave: enclave))
            if activation.status == 0 { activated += 1 } else { Issue.record("activation: \(activation.json)") }
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(answered == 4 && activated == 4)

        let floods = try await [
            ("client tcp", clientTCP), ("client tls", clientTLS), ("client https", clientHTTP),
            ("mesh tcp", meshTCP), ("mesh tls", meshTLS), ("mesh h2", meshHTTP2),
        ]
        for (name, flood) in floods {
            #expect(flood.opened > 0 && flood.failed_to_open == 0, "\(name): \(flood)")
            #expect(
                flood.still_open == 0,
                "\(name): \(flood.still_open) of \(flood.opened) still open 15 s after they were (the timeout is 2 s): \(flood)"
            )
        }
        let after = try await coordinator.request("GET", "/api/v2/status")
        #expect(after.status == 200)
        #expect(await coordinator.stop() == 0)
    }

    @Test func aConnectionTimeoutOutOfRangeIsRefused() async throws {
        let coordinator = try CoordinatorProcess()
        for value in ["0", "3601", "soon"] {
            let run = try await ProcessRunner.run(
                CoordinatorProcess.binary,
                [
                    "--simulation", coordinator.simulationDirectory.path, "--seal-dir", coordinator.directory.path,
                    "--connection-timeout", value,
                ])
            #expect(run.status != 0 && run.stderr.contains("connection timeout"), "\(value): \(run.stderr)")
        }
    }
}
