import Attestation
import Foundation
import ManifestTesting
import MarbleKit
import Testing

/// Coordinator replicas as processes on one real PostgreSQL server: a change through one is
/// served by the others, a killed replica leaves the others serving and catches up when it
/// returns, and a database outage is reported and survived without a restart.
@Suite(.serialized) struct ReplicaBinaryTests {
    static func replicaArguments(_ url: String) -> [String] {
        ["--store-backend", "postgres", "--store-url", url, "--log-level", "notice"]
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

    @Test func replicasShareTheStateSurviveAKilledPeerAndADatabaseRestart() async throws {
        try await PostgresServer.with { database in try await Self.replicas(on: database) }
    }

    static func replicas(on database: PostgresServer) async throws {
        let url = try await database.createDatabase("replicas")
        let a = try CoordinatorProcess()
        let b = try CoordinatorProcess(sharingPlatformAndSealingKeyWith: a)
        let c = try CoordinatorProcess(sharingPlatformAndSealingKeyWith: a)
        // The first creates the state (and the platform and sealing key the others share here).
        try await a.start(extraArguments: Self.replicaArguments(url))
        try await b.start(extraArguments: Self.replicaArguments(url))
        try await c.start(extraArguments: Self.replicaArguments(url))

        let rootA = try await RecoveryAPITests.root(a)
        #expect(try await RecoveryAPITests.root(b) == rootA)
        #expect(try await RecoveryAPITests.root(c) == rootA)
        let platform = try SimulatedPlatform.load(from: a.simulationDirectory)
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

        // The killed replica restarts and serves the current state: five activations counted, more refused.
        try await a.start(extraArguments: Self.replicaArguments(url))
        let afterRestart = try await Self.activate(through: a, root: root, directory: a.directory)
        #expect(!afterRestart)
        let log = try await a.request("GET", "/api/v2/update")
        #expect(((log.json["data"] as? [String: Any])?["updateLog"] as? [Any])?.count == 1)
        for replica in [a, b, c] { #expect(await replica.stop() == 0, "\(replica.log().suffix(2000))") }
    }
}
