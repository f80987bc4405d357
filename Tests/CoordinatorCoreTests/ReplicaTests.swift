import Attestation
import CoordinatorCore
import CoordinatorTesting
import Foundation
import Manifest
import Store
import Testing

/// Two Coordinators on one store (as replicas on one PostgreSQL database), each sealing with
/// the same key here (key distribution between replicas is tested apart): every change made
/// through one is what the other answers with, and concurrent writes never lose one.
@Suite struct ReplicaTests {
    struct Pair {
        let platform: SimulatedPlatform
        let enclave: SimulatedEnclave
        let a: Coordinator
        let b: Coordinator

        static func make() async throws -> Pair {
            let platform = try SimulatedPlatform.generate()
            let store = MemoryStore()
            let sealer = EphemeralSealer()
            var shared = Coordinator.Configuration()
            shared.sharedStore = true
            let configuration = shared
            let start: @Sendable () async throws -> Coordinator = {
                try await Coordinator.start(
                    configuration: configuration, verifier: platform.verifier,
                    collateralProvider: platform.collateralProvider, store: store, sealer: sealer)
            }
            // Started together on an empty store: one creates the state, the other opens it.
            async let first = start()
            async let second = start()
            let (a, b) = try await (first, second)
            return Pair(platform: platform, enclave: ActivationManifest.enclave(on: platform), a: a, b: b)
        }

        func activate(on coordinator: Coordinator, uuid: UUID = UUID()) async throws -> ActivationParameters {
            let marble = try TestMarble()
            return try await coordinator.activate(
                marble.request(platform, enclave: enclave, type: "backend", uuid: uuid),
                peerCertificate: marble.certificate)
        }
    }

    @Test func bothReplicasShareOneCAAndOneManifestAndCountActivationsTogether() async throws {
        let pair = try await Pair.make()
        #expect(await pair.a.pki.root == pair.b.pki.root, "one Coordinator identity, not two")
        _ = try await pair.a.setManifest(ActivationManifest.bytes(signerID: pair.enclave.signerID, maxActivations: 3))

        // B answers with A's manifest without a restart.
        try await pair.b.synchronize()
        #expect(await pair.b.state == .acceptingMarbles)
        #expect(await pair.b.manifest?.fingerprint == pair.a.manifest?.fingerprint)
        await #expect(throws: CoordinatorError.self) {
            _ = try await pair.b.setManifest(ActivationManifest.bytes(signerID: pair.enclave.signerID))
        }

        // MaxActivations 3 holds across both: concurrent activations through A and B, 3 accepted.
        let results = await withTaskGroup(of: Bool.self) { group in
            for index in 0..<8 {
                group.addTask {
                    (try? await pair.activate(on: index % 2 == 0 ? pair.a : pair.b)) != nil
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results.filter { $0 }.count == 3, "\(results)")
        #expect(try await pair.a.activationCount("backend") == 3)
        #expect(try await pair.b.activationCount("backend") == 3)
    }

    @Test func unlimitedActivationsThroughBothReplicasAreAllCounted() async throws {
        let pair = try await Pair.make()
        _ = try await pair.a.setManifest(ActivationManifest.bytes(signerID: pair.enclave.signerID, maxActivations: 0))
        let accepted = await withTaskGroup(of: Bool.self) { group in
            for index in 0..<24 {
                group.addTask { (try? await pair.activate(on: index % 2 == 0 ? pair.a : pair.b)) != nil }
            }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(accepted == 24)
        #expect(try await pair.a.activationCount("backend") == 24)
        #expect(try await pair.b.activationCount("backend") == 24)
    }

    @Test func aLimitSetByAnUpdateCountsTheActivationsMadeWhileUnlimited() async throws {
        let pair = try await Pair.make()
        let (admin, reader, writer) = (
            try TestUser(name: "admin"), try TestUser(name: "reader"), try TestUser(name: "writer")
        )
        func manifest(_ limit: Int) -> [UInt8] {
            UserManifest.bytes(
                signerID: pair.enclave.signerID, admin: admin, reader: reader, writer: writer, maxActivations: limit)
        }
        _ = try await pair.a.setManifest(manifest(0))
        try await pair.a.setSecrets(
            [
                "userKey": UserSecret(key: Array(repeating: 1, count: 16)),
                "userCert": try UserFixture.certificateSecret(),
            ],
            by: try await pair.a.authenticate(admin.certificateDER))
        for index in 0..<5 { _ = try await pair.activate(on: index % 2 == 0 ? pair.a : pair.b) }
        #expect(try await pair.b.activationCount("backend") == 5)

        let update = try await pair.b.update(manifest(6), by: try await pair.b.authenticate(admin.certificateDER))
        #expect(update.missingAcknowledgments == 0)
        _ = try await pair.activate(on: pair.a)
        await #expect {
            _ = try await pair.activate(on: pair.b)
        } throws: { ($0 as? CoordinatorError)?.code == .activationLimit }
        await #expect {
            _ = try await pair.activate(on: pair.a)
        } throws: { ($0 as? CoordinatorError)?.code == .activationLimit }
    }

    @Test func secretsAndUpdatesThroughOneAreWhatTheOtherServes() async throws {
        let pair = try await Pair.make()
        let (admin, reader, writer) = (
            try TestUser(name: "admin"), try TestUser(name: "reader"), try TestUser(name: "writer")
        )
        _ = try await pair.a.setManifest(
            UserManifest.bytes(signerID: pair.enclave.signerID, admin: admin, reader: reader, writer: writer))
        try await pair.b.synchronize()
        let writerOnB = try await pair.b.authenticate(writer.certificateDER)
        let readerOnA = try await pair.a.authenticate(reader.certificateDER)

        // Concurrent writes of one secret through both replicas: each either lands or is refused
        // as a conflict (retried here); none is lost, and the log has every one that landed.
        _ = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<10 {
                group.addTask {
                    let replica = index % 2 == 0 ? pair.a : pair.b
                    let user = try await replica.authenticate(writer.certificateDER)
                    // A replica that did not reload after a conflict would conflict forever.
                    for conflicts in 0..<50 {
                        do {
                            try await replica.setSecrets(
                                ["userKey": UserSecret(key: Array(repeating: UInt8(index), count: 16))], by: user)
                            return conflicts
                        } catch let error as CoordinatorError where error.code == .conflict {
                            continue
                        }
                    }
                    throw CoordinatorError(.conflict, "write \(index) never landed")
                }
            }
            return try await group.reduce(0, +)
        }
        try await pair.a.synchronize()
        try await pair.b.synchronize()
        let logA = try await pair.a.updateLog()
        let logB = try await pair.b.updateLog()
        #expect(logA == logB)
        let secretWrites = logA.filter { String(decoding: $0, as: UTF8.self).contains("secrets-written") }
        #expect(secretWrites.count == 10, "every acknowledged write is in the log once")
        let final = try await pair.a.secrets(["userKey"], for: readerOnA)["userKey"]
        let last = try #require(logA.last.map { String(decoding: $0, as: UTF8.self) })
        #expect(last.contains("secrets-written"))
        let value = try #require(final?.privateKey)
        #expect(
            value.count == 16 && Set(value).count == 1 && value[0] < 10, "one of the written values, whole: \(value)")

        // A write through B is what A reads.
        try await pair.b.setSecrets(["userKey": UserSecret(key: Array(repeating: 0xab, count: 16))], by: writerOnB)
        try await pair.a.synchronize()
        #expect(
            try await pair.a.secrets(["userKey"], for: readerOnA)["userKey"]?.privateKey
                == Array(repeating: 0xab, count: 16))
    }

    /// A store whose first read of the sealed data key answers "none": a replica that read the
    /// empty store just before another replica committed the new state.
    actor LateReaderStore: StateStore {
        let inner: MemoryStore
        private var hidden = true

        init(_ inner: MemoryStore) { self.inner = inner }

        func read(_ key: String) async throws(StoreError) -> StoredValue? {
            if key == "sealed-data-key", hidden {
                hidden = false
                return nil
            }
            return try await inner.read(key)
        }

        func keys(withPrefix prefix: String) async throws(StoreError) -> [String] {
            try await inner.keys(withPrefix: prefix)
        }

        func commit(_ writes: [StoreWrite]) async throws(StoreError) { try await inner.commit(writes) }

        func close() async {}
    }

    /// Two replicas started together on an empty store: the one that saw the store empty but finds
    /// the other's state when it goes to create its own opens that state (it used to refuse to start,
    /// "the store holds records but no sealed data key", now and then in this suite's `Pair.make`).
    @Test func aReplicaThatSawTheStoreEmptyOpensTheStateAnotherJustCreated() async throws {
        let platform = try SimulatedPlatform.generate()
        let store = MemoryStore()
        let sealer = EphemeralSealer()
        var configuration = Coordinator.Configuration()
        configuration.sharedStore = true
        let first = try await Coordinator.start(
            configuration: configuration, verifier: platform.verifier,
            collateralProvider: platform.collateralProvider, store: store, sealer: sealer)
        let second = try await Coordinator.start(
            configuration: configuration, verifier: platform.verifier,
            collateralProvider: platform.collateralProvider, store: LateReaderStore(store), sealer: sealer)
        #expect(await second.pki.root == first.pki.root, "one Coordinator identity, not two")
    }

    /// Key distribution: only a replica whose quote verifies, binds the TLS certificate it
    /// presents, and shows the Coordinator's own identity gets the data key.
    @Test func theDataKeyGoesOnlyToAnAttestedReplicaOfTheSameCode() async throws {
        let platform = try SimulatedPlatform.generate()
        let own = SimulatedEnclave(
            uniqueID: Array(repeating: 0xc0, count: 32), signerID: platform.defaultSigner.signerID)
        var configuration = Coordinator.Configuration()
        configuration.sharedStore = true
        configuration.replicaIdentity = PackagePolicy(uniqueID: own.uniqueID)
        let store = MemoryStore()
        let coordinator = try await Coordinator.start(
            configuration: configuration, verifier: platform.verifier,
            collateralProvider: platform.collateralProvider, store: store, sealer: EphemeralSealer())
        let replica = try TestMarble()

        let key = try await coordinator.handOverDataKey(
            quote: replica.quote(platform, enclave: own), peerCertificate: replica.certificate)
        #expect(key.count == 32)

        // The key opens the state: a replica with another sealer joins with it and keeps its own copy.
        let joined = try await Coordinator.start(
            configuration: configuration, verifier: platform.verifier,
            collateralProvider: platform.collateralProvider, store: store, sealer: EphemeralSealer(),
            dataKeySource: { key })
        #expect(await joined.pki.root == coordinator.pki.root)
        #expect(try await store.keys(withPrefix: "sealed-data-key/").count == 1)
        // A wrong key is refused before anything is written.
        await #expect {
            _ = try await Coordinator.start(
                configuration: configuration, verifier: platform.verifier,
                collateralProvider: platform.collateralProvider, store: store,
                sealer: EphemeralSealer(), dataKeySource: { Array(repeating: 7, count: 32) })
        } throws: { ($0 as? CoordinatorError)?.code == .sealedState }
        #expect(try await store.keys(withPrefix: "sealed-data-key/").count == 1)

        // Other code, a quote bound to another certificate, garbage: refused.
        let other = SimulatedEnclave(uniqueID: Array(repeating: 0xee, count: 32), signerID: own.signerID)
        let refusals: [([UInt8], [UInt8], CoordinatorError.Code)] = [
            (try replica.quote(platform, enclave: other), replica.certificate, .attestation),
            (try replica.quote(platform, enclave: own), try TestMarble().certificate, .keyBinding),
            (Array(repeating: 3, count: 700), replica.certificate, .attestation),
            ([], replica.certificate, .attestation),
        ]
        for (quote, certificate, code) in refusals {
            await #expect {
                _ = try await coordinator.handOverDataKey(quote: quote, peerCertificate: certificate)
            } throws: { ($0 as? CoordinatorError)?.code == code }
        }
        // A quote from another platform (another Intel root): refused.
        let foreign = try SimulatedPlatform.generate()
        await #expect {
            _ = try await coordinator.handOverDataKey(
                quote: replica.quote(foreign, enclave: own), peerCertificate: replica.certificate)
        } throws: { ($0 as? CoordinatorError)?.code == .attestation }

        // Without an identity to compare with, nothing is handed over at all.
        var closed = configuration
        closed.replicaIdentity = nil
        let single = try await Coordinator.start(
            configuration: closed, verifier: platform.verifier,
            collateralProvider: platform.collateralProvider, store: MemoryStore(),
            sealer: EphemeralSealer())
        await #expect {
            _ = try await single.handOverDataKey(
                quote: replica.quote(platform, enclave: own), peerCertificate: replica.certificate)
        } throws: { ($0 as? CoordinatorError)?.code == .forbidden }
    }
}
