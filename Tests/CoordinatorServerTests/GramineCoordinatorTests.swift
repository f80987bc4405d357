import Attestation
import CoordinatorTesting
import Foundation
import Store
import Testing

/// The Coordinator without `--simulation`, in a stand-in for a Gramine enclave (``FakeGramine``:
/// its quotes come from a simulated platform whose root `--sgx-root-ca` pins, its collateral from
/// a local PCCS named by an `sgx_default_qcnl.conf`): it finds the enclave, says which one it is,
/// seals with the SGX key the manifest's seal mode names and unseals after a restart.
@Suite struct GramineCoordinatorTests {
    /// One Coordinator's enclave: a platform, the PCCS serving its collateral, and Gramine's
    /// interface for an enclave identity with the given sealing keys.
    final class Enclave {
        let coordinator = try! CoordinatorProcess()
        let platform: SimulatedPlatform
        let pccs: LocalPCCS
        let identity: SimulatedEnclave
        var gramine: FakeGramine
        let files: [String]

        init() throws {
            platform = try SimulatedPlatform.generate()
            try platform.write(to: coordinator.simulationDirectory)
            pccs = try LocalPCCS(folder: coordinator.simulationDirectory.appendingPathComponent("collateral"))
            identity = SimulatedEnclave(
                uniqueID: [UInt8](repeating: 0x5A, count: 32), signerID: platform.defaultSigner.signerID,
                productID: 1, securityVersion: 2)
            gramine = try FakeGramine(
                directory: coordinator.directory.appendingPathComponent("attestation-1"), platform: platform,
                enclave: identity, signerKey: Self.key(1), enclaveKey: Self.key(2))
            let qcnl = coordinator.directory.appendingPathComponent("sgx_default_qcnl.conf")
            try Data(#"{"pccs_url": "\#(pccs.baseURL)/sgx/certification/v4/", "use_secure_cert": false}"#.utf8)
                .write(to: qcnl)
            let root = coordinator.directory.appendingPathComponent("sgx-root.pem")
            try Data(platform.rootCertificate.serializeAsPEM().pemString.utf8).write(to: root)
            files = ["--sgx-root-ca", root.path, "--qcnl-config", qcnl.path]
        }

        static func key(_ byte: UInt8) -> [UInt8] { [UInt8](repeating: byte, count: 16) }

        /// Gramine's interface with other sealing keys (another signer's or another enclave's).
        func replaceKeys(signerKey: [UInt8], enclaveKey: [UInt8]) throws {
            gramine.stop()
            gramine = try FakeGramine(
                directory: coordinator.directory.appendingPathComponent("attestation-\(UUID().uuidString.prefix(8))"),
                platform: platform, enclave: identity, signerKey: signerKey, enclaveKey: enclaveKey)
        }

        func start() async throws {
            try await coordinator.start(
                extraArguments: ["--gramine-dir", gramine.directory.path] + files, simulation: false)
        }

        /// Starting fails, and the log says `reason`.
        func expectStartRefused(_ reason: String, sourceLocation: SourceLocation = #_sourceLocation) async {
            await #expect(throws: TestFailure.self, sourceLocation: sourceLocation) { try await self.start() }
            #expect(await coordinator.exitStatus() == 1, sourceLocation: sourceLocation)
            #expect(
                coordinator.log().contains(reason), "\(coordinator.log().suffix(800))", sourceLocation: sourceLocation)
        }

        func setManifest(sealMode: String?, recoveryKey: TestRecoveryKey? = nil) async throws {
            let config = sealMode.map { #", "Config": {"SealMode": "\#($0)"}"# } ?? ""
            let recovery =
                recoveryKey.map {
                    #", "RecoveryKeys": {"\#($0.name)": "\#($0.publicKeyPEM.replacingOccurrences(of: "\n", with: "\\n"))"}"#
                } ?? ""
            let manifest = """
                {"Packages": {"backend": {"SignerID": "\(Hex.encode(platform.defaultSigner.signerID))", "ProductID": 1, "SecurityVersion": 2}},
                 "Marbles": {"backend": {"Package": "backend"}}\(config)\(recovery)}
                """
            let set = try await coordinator.request(
                "POST", "/api/v2/manifest", body: #"{"manifest":"\#(Data(manifest.utf8).base64EncodedString())"}"#)
            #expect(set.status == 200, "\(set.json)")
        }

        /// The seal mode byte of the stored data key record (1 product, 2 unique, 3 disabled).
        func storedSealMode() async throws -> UInt8? {
            let store = try await SQLiteStore.open(
                path: coordinator.sealDirectory.appendingPathComponent("coordinator.sqlite").path)
            defer { Task { await store.close() } }
            return try await store.read("sealed-data-key").map { $0.bytes[1] }
        }

        func state() async throws -> Int? {
            let status = try await coordinator.request("GET", "/api/v2/status")
            return (status.json["data"] as? [String: Any])?["code"] as? Int
        }

        deinit { gramine.stop() }
    }

    @Test func withoutSimulationOrAnEnclaveTheCoordinatorRefusesToStartAndSaysWhatToDo() async throws {
        let coordinator = try CoordinatorProcess()
        await #expect(throws: TestFailure.self) {
            try await coordinator.start(
                extraArguments: ["--gramine-dir", coordinator.directory.appendingPathComponent("none").path],
                simulation: false)
        }
        #expect(await coordinator.exitStatus() == 1)
        let log = coordinator.log()
        #expect(log.contains("no SGX enclave to run in") && log.contains("does not exist"), "\(log.suffix(600))")
        #expect(log.contains("gramine-sgx") && log.contains("--simulation DIR"), "\(log.suffix(600))")
    }

    @Test func itSealsWithTheProductKeyAndUnsealsAfterARestartButNotUnderAnotherSigner() async throws {
        let enclave = try Enclave()
        try await enclave.start()
        let log = enclave.coordinator.log()
        #expect(
            log.contains("SGX (Gramine)") && log.contains(Hex.encode(enclave.identity.uniqueID)), "\(log.suffix(800))")
        #expect(!log.contains("SIMULATION MODE"))
        let root = try await RecoveryAPITests.root(enclave.coordinator)
        try await enclave.setManifest(sealMode: nil)
        #expect(await enclave.coordinator.stop() == 0)
        #expect(try await enclave.storedSealMode() == 1)

        try await enclave.start()
        #expect(try await RecoveryAPITests.root(enclave.coordinator) == root, "the same state, unsealed")
        #expect(try await enclave.state() == 3, "accepting marbles")
        #expect(await enclave.coordinator.stop() == 0)

        // Another signer's key (another product, or the host faking it): no recovery keys, a clear stop.
        try enclave.replaceKeys(signerKey: Enclave.key(9), enclaveKey: Enclave.key(2))
        await enclave.expectStartRefused("product (MRSIGNER) key")
    }

    @Test func aUniqueKeySealModeResealsWithTheEnclavesOwnKey() async throws {
        let enclave = try Enclave()
        try await enclave.start()
        try await enclave.setManifest(sealMode: "UniqueKey")
        #expect(await enclave.coordinator.stop() == 0)
        #expect(try await enclave.storedSealMode() == 2, "re-sealed when the manifest was set")
        try await enclave.start()
        #expect(try await enclave.state() == 3, "accepting marbles")
        #expect(await enclave.coordinator.stop() == 0)
        // The same signer's key no longer opens it: only this enclave's (MRENCLAVE) key does.
        try enclave.replaceKeys(signerKey: Enclave.key(1), enclaveKey: Enclave.key(7))
        await enclave.expectStartRefused("unique (MRENCLAVE) key")
    }

    @Test func sealingDisabledStartsInRecoveryEveryTime() async throws {
        let enclave = try Enclave()
        try await enclave.start()
        let alice = try TestRecoveryKey(name: "alice")
        try await enclave.setManifest(sealMode: "Disabled", recoveryKey: alice)
        #expect(await enclave.coordinator.stop() == 0)
        #expect(try await enclave.storedSealMode() == 3, "no sealed key is kept")
        for _ in 0..<2 {
            let logged = enclave.coordinator.log().count
            try await enclave.start()
            #expect(try await enclave.state() == 1, "recovery mode")
            // This start's own lines say why (the log file keeps the earlier starts' too).
            #expect(String(enclave.coordinator.log().dropFirst(logged)).contains("SealMode Disabled"))
            #expect(await enclave.coordinator.stop() == 0)
        }
    }

    @Test func anotherSignersKeyWithRecoveryKeysOpensRecoveryMode() async throws {
        let enclave = try Enclave()
        try await enclave.start()
        try await enclave.setManifest(sealMode: nil, recoveryKey: try TestRecoveryKey(name: "alice"))
        #expect(await enclave.coordinator.stop() == 0)
        try enclave.replaceKeys(signerKey: Enclave.key(9), enclaveKey: Enclave.key(2))
        try await enclave.start()
        #expect(try await enclave.state() == 1)
        #expect(await enclave.coordinator.stop() == 0)
    }
}
