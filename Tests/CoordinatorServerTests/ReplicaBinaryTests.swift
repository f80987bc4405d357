import Attestation
import CoordinatorTesting
import Crypto
import Foundation
import MarbleKit
import Synchronization
import Testing

/// Coordinator replicas as processes on one real PostgreSQL server: a change through one is
/// served by the others, a killed replica leaves the others serving and catches up when it
/// returns, and a database outage is reported and survived without a restart.
@Suite(.serialized) struct ReplicaBinaryTests {
    static func replicaArguments(_ url: String, peers: [CoordinatorProcess] = []) -> [String] {
        ["--store-backend", "postgres", "--store-url", url, "--log-level", "notice"]
            + peers.flatMap { ["--peer", "localhost:\($0.clientPort)"] }
    }

    /// Activates a new marble through `replica`; nil when the Coordinator refused it.
    static func activate(through replica: CoordinatorProcess, root: String, directory: URL) async throws -> Bool {
        let platform = try SimulatedPlatform.load(from: replica.simulationDirectory)
        let configuration = MarbleConfiguration(
            marbleType: "backend", coordinatorAddress: "localhost:\(replica.meshPort)",
            uuidFile: directory.appendingPathComponent("uuid-\(UUID().uuidString)"), dnsNames: ["localhost"],
            coordinatorRoot: root)
        let issuer = SimulatedQuoteIssuer(platform: platform, enclave: ActivationManifest.enclave(on: platform))
        do {
            _ = try await Marble.activate(configuration, quoteIssuer: issuer)
            return true
        } catch {
            if error.code == .refused { return false }
            throw error
        }
    }

    /// Whether `replica` answers its status with 200 within 30 s.
    static func serves(_ replica: CoordinatorProcess) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let answer = try? await replica.request("GET", "/api/v2/status"), answer.status == 200 { return true }
            try await Task.sleep(for: .milliseconds(200))
        }
        return false
    }

    /// A relay between a joining replica and a real one: it passes `/quote` on and answers the
    /// key request with a key of its own and the real Coordinator's public quote over the
    /// joiner's nonce. The joiner refuses it (the relay's TLS certificate is not under the root
    /// the quote binds, and a `/quote` quote is not a hand-over quote) and does not start.
    @Test func aRelayPassingOnAGenuineQuoteWithItsOwnKeyIsRefused() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: TestData.python.path), "run ./scripts/test")
        try await PostgresServer.with { database in
            let url = try await database.createDatabase("relay")
            let a = try CoordinatorProcess()
            let b = try CoordinatorProcess(sharingPlatformWith: a)
            try await a.start(extraArguments: Self.replicaArguments(url))
            let certFile = a.directory.appendingPathComponent("relay.pem").path
            let keyFile = a.directory.appendingPathComponent("relay.key").path
            let made = try await ProcessRunner.run(
                URL(fileURLWithPath: "/usr/bin/openssl"),
                [
                    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj",
                    "/CN=MarbleRun Coordinator", "-days", "1", "-keyout", keyFile, "-out", certFile,
                ])
            try #require(made.status == 0, "\(made.stderr)")
            let port = a.clientPort - 8_000
            let relay = Process()
            relay.executableURL = TestData.python
            relay.arguments = [
                TestData.packageRoot.appendingPathComponent("Tests/Support/replica_key_relay.py").path, String(port),
                certFile, keyFile, "127.0.0.1:\(a.clientPort)",
            ]
            // Not the test's own output: an open pipe would keep the test runner waiting.
            relay.standardOutput = FileHandle.nullDevice
            relay.standardError = FileHandle.nullDevice
            try relay.run()
            defer { kill(relay.processIdentifier, SIGKILL) }
            let deadline = ContinuousClock.now + .seconds(30)
            var ready = false
            while !ready, ContinuousClock.now < deadline {
                ready = (try? await a.curl(["-k", "https://127.0.0.1:\(port)/api/v2/status"]))?.status == 0
                if !ready { try await Task.sleep(for: .milliseconds(100)) }
            }
            try #require(ready, "the relay did not start")

            await #expect(throws: TestFailure.self) {
                try await b.start(
                    extraArguments: [
                        "--store-backend", "postgres", "--store-url", url, "--log-level", "notice", "--peer",
                        "127.0.0.1:\(port)",
                    ])
            }
            let log = b.log()
            #expect(log.contains("not trusted"), "\(log.suffix(1500))")
            #expect(!log.contains("does not open the state"), "the relay's key was taken for the data key")
            #expect(!a.log().contains("handed the data key"))
            #expect(await a.stop() == 0)
        }
    }

    @Test func replicasShareTheStateSurviveAKilledPeerAndADatabaseRestart() async throws {
        try await PostgresServer.with { database in try await Self.replicas(on: database) }
    }

    static func replicas(on database: PostgresServer) async throws {
        let url = try await database.createDatabase("replicas")
        let a = try CoordinatorProcess()
        // Each replica seals with its own key (its own seal directory); they share the simulated
        // platform, as real replicas share Intel's root of trust.
        let b = try CoordinatorProcess(sharingPlatformWith: a)
        let c = try CoordinatorProcess(sharingPlatformWith: a)
        try await a.start(extraArguments: Self.replicaArguments(url))
        // b cannot unseal a's key: it obtains it from a by mutual attestation, then keeps its own copy.
        try await b.start(extraArguments: Self.replicaArguments(url, peers: [a]))
        #expect(b.log().contains("obtained the data key from an attested replica"))
        #expect(a.log().contains("handed the data key to an attested replica"))
        try await c.start(extraArguments: Self.replicaArguments(url, peers: [b]))

        let platform = try SimulatedPlatform.load(from: a.simulationDirectory)
        // Asking for the key without a certificate, or with a quote that is not this code's, gets nothing.
        let stranger = try TestUser(name: "stranger")
        let identity = (
            cert: try CoordinatorBinaryTests.write(stranger.certificatePEM, "stranger.crt", in: a.directory),
            key: try CoordinatorBinaryTests.write(stranger.keyPEM, "stranger.key", in: a.directory)
        )
        let strangerQuote = try platform.quote(
            reportData: Array(SHA256.hash(data: stranger.certificateDER)),
            enclave: ActivationManifest.enclave(on: platform))
        let body =
            #"{"quote":"\#(Data(strangerQuote).base64EncodedString())","nonce":"\#(Data(repeating: 1, count: 32).base64EncodedString())"}"#
        let anonymous = try await a.request("POST", "/api/v2/replica/key", body: body)
        #expect(
            anonymous.status == 401 && (anonymous.json["data"] as? [String: Any])?["key"] == nil, "\(anonymous.json)")
        let impostor = try await a.request("POST", "/api/v2/replica/key", body: body, identity: identity)
        #expect(impostor.status == 403 && (impostor.json["data"] as? [String: Any])?["key"] == nil, "\(impostor.json)")
        #expect((impostor.json["message"] as? String)?.contains("not this Coordinator's code") == true)
        for (bad, reason) in [
            ("{}", "quote"), ("not json", "not JSON"), (#"{"quote":"%%%","nonce":"AA=="}"#, "base64"),
            (#"{"quote":"AA==","nonce":"AA=="}"#, "16 to 64 bytes"),
            (#"{"quote":"AA==","nonce":"AA==","key":1}"#, "key"),
        ] {
            let refused = try await a.request("POST", "/api/v2/replica/key", body: bad, identity: identity)
            #expect(refused.status == 400, "\(bad): \(refused.json)")
            #expect((refused.json["message"] as? String)?.contains(reason) == true, "\(bad): \(refused.json)")
        }

        let rootA = try await RecoveryAPITests.root(a)
        #expect(try await RecoveryAPITests.root(b) == rootA)
        #expect(try await RecoveryAPITests.root(c) == rootA)
        let manifest = ActivationManifest.bytes(
            signerID: ActivationManifest.enclave(on: platform).signerID, maxActivations: 5)
        let set = try await a.request(
            "POST", "/api/v2/manifest", body: #"{"manifest":"\#(Data(manifest).base64EncodedString())"}"#)
        try #require(set.status == 200, "\(set.json)")
        for replica in [b, c] {
            let status = try await replica.request("GET", "/api/v2/status")
            #expect((status.json["data"] as? [String: Any])?["code"] as? Int == 3, "\(status.json)")
            let again = try await replica.request(
                "POST", "/api/v2/manifest", body: #"{"manifest":"\#(Data(manifest).base64EncodedString())"}"#)
            #expect(again.status == 409, "the manifest is set once, whichever replica is asked")
        }

        // MaxActivations 5 across three replicas: 4 activations, one through each and one more.
        let root = try rootA.serializeAsPEM().pemString
        for replica in [a, b, c, b] {
            #expect(try await Self.activate(through: replica, root: root, directory: a.directory))
        }
        // A replica dies mid-flight; the others keep serving and counting.
        await a.kill()
        #expect(try await Self.activate(through: c, root: root, directory: a.directory))
        let sixth = try await Self.activate(through: b, root: root, directory: a.directory)
        #expect(!sixth, "the sixth is refused")

        // The database restarts: replicas say the store is unavailable, then serve again by themselves.
        await database.stop()
        let down = try await b.request("GET", "/api/v2/status")
        #expect(down.status == 503, "\(down.json)")
        #expect((down.json["message"] as? String)?.contains("state store") == true, "\(down.json)")
        try await database.start()
        #expect(try await Self.serves(b), "replica b serves again after the database returned")

        // The killed replica restarts from its own sealed copy and serves the current state:
        // five activations counted, more refused.
        try await a.start(extraArguments: Self.replicaArguments(url))
        let afterRestart = try await Self.activate(through: a, root: root, directory: a.directory)
        #expect(!afterRestart)
        let log = try await a.request("GET", "/api/v2/update")
        #expect(((log.json["data"] as? [String: Any])?["updateLog"] as? [Any])?.count == 1)
        // c restarts without a peer: its own sealed copy opens the state.
        #expect(await c.stop() == 0)
        try await c.start(extraArguments: Self.replicaArguments(url))
        // --peer belongs to replicas: with the embedded store it is refused at start.
        let lone = try CoordinatorProcess()
        await #expect(throws: (any Error).self) { try await lone.start(extraArguments: ["--peer", "localhost:1"]) }
        #expect(lone.log().contains("--store-backend postgres"), "\(lone.log().suffix(800))")
        // A new replica with neither a copy nor a peer stops with what to do.
        let d = try CoordinatorProcess(sharingPlatformWith: a)
        await #expect(throws: (any Error).self) { try await d.start(extraArguments: Self.replicaArguments(url)) }
        #expect(d.log().contains("--peer HOST:PORT"), "\(d.log().suffix(1500))")
        for replica in [a, b, c] { #expect(await replica.stop() == 0, "\(replica.log().suffix(2000))") }
    }

    @Test func threeReplicasUnderLoadLoseNoAcknowledgedActivationWhenOneIsKilled() async throws {
        try await PostgresServer.with { database in
            let url = try await database.createDatabase("load")
            let a = try CoordinatorProcess()
            let b = try CoordinatorProcess(sharingPlatformWith: a)
            let c = try CoordinatorProcess(sharingPlatformWith: a)
            // Every replica is started with the same start-up manifest: the first sets it, the others find it set.
            let limit = 400
            let manifestFile = a.directory.appendingPathComponent("manifest.json")
            try await a.start(extraArguments: Self.replicaArguments(url))
            let platform = try SimulatedPlatform.load(from: a.simulationDirectory)
            try Data(
                ActivationManifest.bytes(
                    signerID: ActivationManifest.enclave(on: platform).signerID, maxActivations: limit)
            ).write(to: manifestFile)
            let startup = ["--startup-manifest", manifestFile.path]
            _ = await a.stop()
            try await a.start(extraArguments: Self.replicaArguments(url) + startup)
            try await b.start(extraArguments: Self.replicaArguments(url, peers: [a]) + startup)
            try await c.start(extraArguments: Self.replicaArguments(url, peers: [a, b]) + startup)
            for replica in [a, b, c] {
                let status = try await replica.request("GET", "/api/v2/status")
                #expect((status.json["data"] as? [String: Any])?["code"] as? Int == 3, "\(status.json)")
            }
            let root = try await RecoveryAPITests.root(a).serializeAsPEM().pemString

            // Four marbles at a time, spread over the three replicas, for about five seconds;
            // replica a is killed after one second and restarted after two, then the database
            // restarts under the load.
            let acknowledged = CrashTests.Acknowledged()
            let replicas = [a, b, c]
            let deadline = ContinuousClock.now + .seconds(5)
            let load = Task {
                await withTaskGroup(of: Void.self) { group in
                    for worker in 0..<4 {
                        group.addTask {
                            var index = worker
                            while ContinuousClock.now < deadline {
                                let replica = replicas[index % 3]
                                index += 1
                                let uuid = UUID()
                                acknowledged.attemptedActivations.withLock { $0 += 1 }
                                if await CrashTests.activate(replica, uuid: uuid, root: root) {
                                    acknowledged.activations.withLock { $0.append(uuid) }
                                }
                            }
                        }
                    }
                }
            }
            try await Task.sleep(for: .seconds(1))
            await a.kill()
            try await Task.sleep(for: .seconds(1))
            try await a.start(extraArguments: Self.replicaArguments(url))
            await database.stop()
            let down = try await c.request("GET", "/api/v2/status")
            #expect(down.status == 503, "\(down.json)")
            #expect((down.json["message"] as? String)?.contains("state store") == true, "\(down.json)")
            try await Task.sleep(for: .milliseconds(500))
            try await database.start()
            await load.value
            for replica in replicas {
                #expect(try await Self.serves(replica), "every replica serves again without a restart")
            }

            let activations = acknowledged.activations.withLock { $0 }
            let attempted = acknowledged.attemptedActivations.withLock { $0 }
            try #require(attempted < limit, "the load must stay below the limit to count it")
            #expect(activations.count >= 8, "the load did something: \(activations.count) of \(attempted)")
            // The stored count covers every acknowledged activation: fill the remaining capacity through b.
            var fresh = 0
            while fresh <= limit, await CrashTests.activate(b, uuid: UUID(), root: root) { fresh += 1 }
            #expect(limit - fresh >= activations.count, "\(limit - fresh) counted, \(activations.count) acknowledged")
            #expect(limit - fresh <= attempted)
            // Every acknowledged marble is still known, through any replica (the restarted one
            // included): refused as another marble type, where an unknown UUID is activated.
            for (index, uuid) in activations.enumerated() {
                let asProbe = await CrashTests.activate(replicas[index % 3], uuid: uuid, root: root, type: "probe")
                #expect(!asProbe, "acknowledged marble \(uuid) is unknown to replica \(index % 3)")
            }
            #expect(await CrashTests.activate(a, uuid: UUID(), root: root, type: "probe"))
            #expect(await !CrashTests.activate(a, uuid: UUID(), root: root), "backend is at its limit")
            for replica in replicas { #expect(await replica.stop() == 0) }
        }
    }
}
