import Attestation
import AuditLog
import CoordinatorCore
import CoordinatorTesting
import Foundation
import Testing
import X509

/// Recovery through the real binary: the sealing key is destroyed, the Coordinator starts in
/// recovery mode, two of three signed shares (posted with curl) bring back the same state.
@Suite struct RecoveryAPITests {
    @Test func twoOfThreeSignedSharesRecoverTheRunningCoordinator() async throws {
        let coordinator = try CoordinatorProcess()
        try await coordinator.start()
        let platform = try SimulatedPlatform.load(from: coordinator.simulationDirectory)
        let users = try ["admin", "reader", "writer"].map { try TestUser(name: $0) }
        let holders = try ["alice", "bob", "carol"].map { try TestRecoveryKey(name: $0) }
        let manifest = UserManifest.bytes(
            signerID: ActivationManifest.enclave(on: platform).signerID, admin: users[0], reader: users[1],
            writer: users[2], recoveryKeys: holders, recoveryThreshold: 2)
        let set = try await coordinator.request(
            "POST", "/api/v2/manifest", body: #"{"manifest":"\#(Data(manifest).base64EncodedString())"}"#)
        try #require(set.status == 200, "\(set.json)")
        let encrypted = try #require((set.json["data"] as? [String: Any])?["RecoverySecrets"] as? [String: String])
        #expect(encrypted.keys.sorted() == ["alice", "bob", "carol"])
        let shares = try holders.map { holder in
            try holder.decrypt(Array(try #require(Data(base64Encoded: encrypted[holder.name] ?? ""))))
        }
        let admin = (
            try CoordinatorBinaryTests.write(users[0].certificatePEM, "admin.crt", in: coordinator.directory),
            try CoordinatorBinaryTests.write(users[0].keyPEM, "admin.key", in: coordinator.directory)
        )
        let secret = #"{"secrets":{"userPlain":{"Key":"c2VhbGVk"}}}"#
        #expect(try await coordinator.request("POST", "/api/v2/secrets", body: secret, identity: admin).status == 200)
        let root = try await Self.root(coordinator)
        #expect(await coordinator.stop() == 0)

        // The machine's sealing key is gone: the state stays, sealed to a key nobody has.
        try FileManager.default.removeItem(
            at: coordinator.sealDirectory.appendingPathComponent(SimulationSealer.fileName))
        try await coordinator.start()
        #expect(try await Self.statusCode(coordinator) == 1)
        #expect(coordinator.log().contains("RECOVERY MODE"))
        let refused = try await coordinator.request("GET", "/api/v2/manifest")
        #expect(refused.status == 409 && refused.json["status"] as? String == "fail")
        let publicKey = try await coordinator.request("GET", "/api/v2/recover/public-key")
        #expect((publicKey.json["data"] as? [String: Any])?["algorithm"] as? String == "RSA")

        func post(_ share: [UInt8], _ signature: [UInt8]) async throws -> (status: Int, json: [String: Any]) {
            let body =
                #"{"recoverySecret":"\#(Data(share).base64EncodedString())","recoverySecretSignature":"\#(Data(signature).base64EncodedString())"}"#
            return try await coordinator.request("POST", "/api/v2/recover", body: body)
        }
        #expect(try await post(shares[0], try holders[1].sign(shares[1])).status == 403)
        #expect(try await post(shares[0], try TestRecoveryKey(name: "mallory").sign(shares[0])).status == 403)
        #expect(try await coordinator.request("POST", "/api/v2/recover", body: "{}").status == 400)
        let first = try await post(shares[0], try holders[0].sign(shares[0]))
        #expect(first.status == 200 && (first.json["data"] as? [String: Any])?["remaining"] as? Int == 1)
        let second = try await post(shares[2], try holders[2].sign(shares[2]))
        #expect((second.json["data"] as? [String: Any])?["remaining"] as? Int == 0, "\(second.json)")

        // The same process leaves recovery mode and serves the recovered state.
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline, (try? await Self.statusCode(coordinator)) != 3 {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(try await Self.statusCode(coordinator) == 3)
        #expect(try await Self.root(coordinator) == root)
        let read = try await coordinator.request("GET", "/api/v2/secrets?s=userPlain", identity: admin)
        let value = ((read.json["data"] as? [String: Any])?["secrets"] as? [String: [String: Any]])?["userPlain"]
        #expect(value?["Private"] as? String == "c2VhbGVk")
        let log = try await coordinator.request("GET", "/api/v2/update")
        let lines = try #require((log.json["data"] as? [String: Any])?["updateLog"] as? [String])
        let entries = try AuditLog.verify(lines.map { Array($0.utf8) }, root: root)
        #expect(entries.last?.event == AuditEvent.recovered && entries.last?.details["recoveryKeys"] == "alice,carol")
        #expect(await coordinator.stop() == 0)

        // And the next start needs no recovery.
        try await coordinator.start()
        #expect(try await Self.statusCode(coordinator) == 3)
        #expect(await coordinator.stop() == 0)
    }

    static func statusCode(_ coordinator: CoordinatorProcess) async throws -> Int? {
        (try await coordinator.request("GET", "/api/v2/status").json["data"] as? [String: Any])?["code"] as? Int
    }

    static func root(_ coordinator: CoordinatorProcess) async throws -> Certificate {
        let quote = try await coordinator.request("GET", "/api/v2/quote")
        let chain = try CoordinatorBinaryTests.pemBlocks(
            try #require((quote.json["data"] as? [String: Any])?["cert"] as? String))
        return try Certificate(derEncoded: try #require(chain.last))
    }
}

@Suite struct RecoveryOverwriteTests {
    /// In recovery mode a new manifest replaces the sealed state only when asked to explicitly.
    /// A Coordinator whose state (a manifest with one recovery key) is sealed to a key that is
    /// gone: it runs in recovery mode. Returns the manifest and the root of the sealed state.
    static func inRecovery(_ coordinator: CoordinatorProcess, extraArguments: [String] = []) async throws -> (
        manifest: [UInt8], root: Certificate
    ) {
        try await coordinator.start(extraArguments: extraArguments)
        let platform = try SimulatedPlatform.load(from: coordinator.simulationDirectory)
        let users = try ["admin", "reader", "writer"].map { try TestUser(name: $0) }
        let manifest = UserManifest.bytes(
            signerID: ActivationManifest.enclave(on: platform).signerID, admin: users[0], reader: users[1],
            writer: users[2], recoveryKeys: [try TestRecoveryKey(name: "only")])
        try await coordinator.setManifest(manifest)
        let root = try await RecoveryAPITests.root(coordinator)
        #expect(await coordinator.stop() == 0)
        try FileManager.default.removeItem(
            at: coordinator.sealDirectory.appendingPathComponent(SimulationSealer.fileName))
        try await coordinator.start(extraArguments: extraArguments)
        #expect(try await RecoveryAPITests.statusCode(coordinator) == 1)
        return (manifest, root)
    }

    @Test func aNewManifestReplacesTheSealedStateOnlyExplicitly() async throws {
        let coordinator = try CoordinatorProcess()
        let (manifest, oldRoot) = try await Self.inRecovery(coordinator)
        let body = Data(manifest).base64EncodedString()

        let plain = try await coordinator.request("POST", "/api/v2/manifest", body: #"{"manifest":"\#(body)"}"#)
        #expect(plain.status == 409 && (plain.json["message"] as? String ?? "").contains("overwriteSealedState"))
        let invalid = try await coordinator.request(
            "POST", "/api/v2/manifest", body: #"{"manifest":"e30=","overwriteSealedState":true}"#)
        #expect(invalid.status == 400, "an invalid manifest discards nothing: \(invalid.json)")
        #expect(try await RecoveryAPITests.statusCode(coordinator) == 1)

        let explicit = try await coordinator.request(
            "POST", "/api/v2/manifest", body: #"{"manifest":"\#(body)","overwriteSealedState":true}"#)
        #expect(explicit.status == 200, "\(explicit.json)")
        #expect(
            ((explicit.json["data"] as? [String: Any])?["RecoverySecrets"] as? [String: String])?.keys.sorted() == [
                "only"
            ])
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline, (try? await RecoveryAPITests.statusCode(coordinator)) != 3 {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(try await RecoveryAPITests.statusCode(coordinator) == 3)
        #expect(try await RecoveryAPITests.root(coordinator) != oldRoot, "a new state has a new CA")
        let log = try await coordinator.request("GET", "/api/v2/update")
        #expect(((log.json["data"] as? [String: Any])?["updateLog"] as? [String])?.count == 1)
        #expect(await coordinator.stop() == 0)
    }

    /// With `--strict-manifest`, an overwrite whose manifest the strict check refuses discards
    /// nothing: it is checked as the fresh state would check it, before the state is deleted.
    @Test func aStrictCoordinatorChecksTheOverwriteManifestBeforeDiscardingAnything() async throws {
        let coordinator = try CoordinatorProcess()
        let (manifest, _) = try await Self.inRecovery(coordinator, extraArguments: ["--strict-manifest"])

        // Valid by default (an unknown field is a warning), refused when strict.
        var object = try #require(try JSONSerialization.jsonObject(with: Data(manifest)) as? [String: Any])
        object["Unknown"] = ["field": true]
        let lenient = try JSONSerialization.data(withJSONObject: object).base64EncodedString()
        let refused = try await coordinator.request(
            "POST", "/api/v2/manifest", body: #"{"manifest":"\#(lenient)","overwriteSealedState":true}"#)
        #expect(refused.status == 400, "\(refused.json)")
        #expect(try await RecoveryAPITests.statusCode(coordinator) == 1)
        #expect(await coordinator.stop() == 0)
        // The sealed state is still there: the restarted Coordinator is in recovery mode again.
        try await coordinator.start(extraArguments: ["--strict-manifest"])
        #expect(try await RecoveryAPITests.statusCode(coordinator) == 1)
        #expect(await coordinator.stop() == 0)
    }
}
