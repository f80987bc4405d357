import CoordinatorTesting
import Foundation
import Logging
import Testing

@testable import CoordinatorServer

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
        // Memory before: after one activation and one status answer, so that first-use
        // allocations (collateral, the PKI, TLS contexts) are not counted as the flood's.
        let warmUp = try TestMarble()
        _ = try await CoordinatorBinaryTests.pythonActivate(
            coordinator, rootFile: rootFile, marble: warmUp, quote: try warmUp.quote(platform, enclave: enclave))
        _ = try await coordinator.request("GET", "/api/v2/status")
        let before = try #require(coordinator.residentMemory())
        var peak = before
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
            peak = max(peak, coordinator.residentMemory() ?? 0)
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
        let answer = try await coordinator.request("GET", "/api/v2/status")
        #expect(answer.status == 200)
        // Memory returns: HeapTrimmer gives the closed connections' free heap back within its
        // interval. Without it RSS stayed at 118 MiB after the flood against 62 MiB before (debug
        // build); with it, it came back to within about 20 MiB.
        let trimmed = ContinuousClock.now + HeapTrimmer.interval * 2 + .seconds(5)
        var after = try #require(coordinator.residentMemory())
        while after > before + Self.memoryAllowance, ContinuousClock.now < trimmed {
            try await Task.sleep(for: .milliseconds(500))
            after = try #require(coordinator.residentMemory())
        }
        print(
            "ConnectionHygieneTests: RSS before \(before >> 20) MiB, peak \(peak >> 20) MiB, after \(after >> 20) MiB")
        #expect(
            after <= before + Self.memoryAllowance,
            "RSS \(after >> 20) MiB after the flood, \(before >> 20) MiB before (peak \(peak >> 20) MiB)")
        #expect(await coordinator.stop() == 0)
    }

    /// What the flood may leave of RSS (allocator fragmentation, caches), in a debug build.
    static let memoryAllowance = 32 << 20

    static func metric(_ text: String, _ name: String, listener: String) -> Double? {
        text.split(separator: "\n").first { $0.hasPrefix("\(name){listener=\"\(listener)\"}") }
            .flatMap { $0.split(separator: " ").last.flatMap { Double($0) } }
    }

    @Test func connectionsOverTheCapAreClosedAtOnceCountedAndLogged() async throws {
        let coordinator = try CoordinatorProcess()
        try await coordinator.start(extraArguments: ["--max-connections", "100", "--connection-timeout", "60"])
        let (client, mesh) = (coordinator.clientPort, coordinator.meshPort)
        async let clientFlood = Self.flood(port: client, count: 150, mode: "tcp", seconds: 4)
        async let meshFlood = Self.flood(port: mesh, count: 150, mode: "tcp", seconds: 4)
        let floods = try await [("client", clientFlood), ("mesh", meshFlood)]
        for (name, flood) in floods {
            // 100 held (the timeout is a minute), the other 50 closed as soon as they were accepted.
            #expect(flood.opened == 150 && flood.closed == 50 && flood.still_open == 100, "\(name): \(flood)")
        }
        // The flood's connections are gone with its process: the client API answers again.
        let deadline = ContinuousClock.now + .seconds(30)
        var status = 0
        while ContinuousClock.now < deadline {
            status = (try? await coordinator.request("GET", "/api/v2/status"))?.status ?? 0
            if status == 200 { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(status == 200)
        let metrics = try await coordinator.curl(["http://127.0.0.1:\(coordinator.metricsPort)/metrics"]).stdout
        for listener in ["client", "mesh"] {
            #expect(
                Self.metric(metrics, "coordinator_connections_refused_total", listener: listener) == 50,
                "\(metrics.split(separator: "\n").filter { $0.contains("coordinator_connections") })")
            #expect(Self.metric(metrics, "coordinator_connections_open", listener: listener) != nil)
        }
        let log = coordinator.log()
        #expect(log.contains("connection limit reached"), "\(log.suffix(1000))")
        #expect(log.contains("listener=client") && log.contains("listener=mesh"), "\(log.suffix(1000))")
        #expect(await coordinator.stop() == 0)
    }

    @Test(arguments: [
        ("--connection-timeout", "0", "connection timeout"), ("--connection-timeout", "3601", "connection timeout"),
        ("--connection-timeout", "soon", "connection timeout"), ("--max-connections", "0", "maximum connections"),
        ("--max-connections", "1000001", "maximum connections"), ("--max-connections", "many", "maximum connections"),
    ])
    func aConnectionSettingOutOfRangeIsRefused(_ flag: String, _ value: String, _ named: String) async throws {
        let coordinator = try CoordinatorProcess()
        let run = try await ProcessRunner.run(
            CoordinatorProcess.binary,
            [
                "--simulation", coordinator.simulationDirectory.path, "--seal-dir", coordinator.directory.path, flag,
                value,
            ])
        #expect(run.status != 0 && run.stderr.contains(named), "\(flag) \(value): \(run.stderr)")
    }
}

/// grpc-swift-nio-transport 2.9.2 keeps every connection's management handler alive when
/// `maxIdleTime` is set (its timer is never released on close): about 450 bytes per activation,
/// found by the soak benchmark (BENCHMARKS.md). The mesh transport must not set it; idle
/// connections are closed by `IdleConnectionCloser`.
@Suite struct MeshTransportConfigurationTests {
    @Test func theMeshTransportSetsNoMaxIdleTimeAndKeepsItsLimits() {
        var configuration = ServerConfiguration()
        configuration.connectionTimeout = .seconds(7)
        let transport = CoordinatorServer.meshTransportConfiguration(configuration)
        #expect(transport.connection.maxIdleTime == nil)
        #expect(transport.http2.maxConcurrentStreams == CoordinatorServer.maximumConcurrentStreams)
        #expect(transport.rpc.maxRequestPayloadSize == configuration.maximumActivationRequestSize)
    }
}

/// The trimmer trims after a burst of closed connections, not after each few.
@Suite struct HeapTrimmerTests {
    @Test func trimsOnlyAfterThresholdManyClosedConnections() {
        let trimmer = HeapTrimmer(logger: Logger(label: "test"))
        for _ in 1..<HeapTrimmer.threshold { trimmer.connectionClosed() }
        #expect(!trimmer.trimIfNeeded(), "trimmed after \(HeapTrimmer.threshold - 1) closed connections")
        trimmer.connectionClosed()
        #expect(trimmer.trimIfNeeded())
        #expect(!trimmer.trimIfNeeded(), "the count starts again after a trim")
    }
}
