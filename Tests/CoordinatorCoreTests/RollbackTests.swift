import Attestation
import CoordinatorTesting
import Foundation
import Store
import Testing

@testable import CoordinatorCore

/// Whoever can write the state database may put back an older ciphertext of a record, with
/// its older version, or delete it, while the Coordinator runs or while it is stopped. Each
/// ciphertext authenticates only at its own version, and the sealed index lists every changing
/// record's version: a record below it (or below a version already read), a listed record
/// missing, or an index older than the records is refused, at start and on every read.
@Suite struct RollbackTests {
    static func activate(
        _ coordinator: Coordinator, _ platform: SimulatedPlatform, type: String = "backend"
    ) async throws {
        let marble = try TestMarble()
        _ = try await coordinator.activate(
            marble.request(platform, enclave: ActivationManifest.enclave(on: platform), type: type),
            peerCertificate: marble.certificate)
    }

    /// Coordinators as replicas on one SQLite file (one sealing key).
    struct Replicas {
        let store: SQLiteStore
        let start: @Sendable () async throws -> Coordinator
        let platform: SimulatedPlatform

        /// The first replica, with the manifest set (backend: at most `maxActivations`).
        func startWithManifest(maxActivations: Int) async throws -> Coordinator {
            let coordinator = try await start()
            _ = try await coordinator.setManifest(
                CoordinatorFixture.manifest(
                    signerID: ActivationManifest.enclave(on: platform).signerID, maxActivations: maxActivations))
            return coordinator
        }

        init(_ place: SealedStateTests.Place, _ platform: SimulatedPlatform) async throws {
            try FileManager.default.createDirectory(at: place.directory, withIntermediateDirectories: true)
            let store = try await SQLiteStore.open(path: place.database)
            var configuration = Coordinator.Configuration()
            configuration.sharedStore = true
            let sealer = EphemeralSealer()
            self.store = store
            self.platform = platform
            start = { [configuration] in
                try await Coordinator.start(
                    configuration: configuration, verifier: platform.verifier,
                    collateralProvider: platform.collateralProvider, store: store, sealer: sealer)
            }
        }
    }

    /// A Coordinator on the state in `place` with a manifest set (backend: at most 2 activations).
    static func startWithManifest(
        _ place: SealedStateTests.Place, _ platform: SimulatedPlatform
    ) async throws -> (Coordinator, SQLiteStore) {
        let (coordinator, store) = try await SealedStateTests.start(place, platform: platform)
        _ = try await coordinator.setManifest(
            CoordinatorFixture.manifest(signerID: ActivationManifest.enclave(on: platform).signerID, maxActivations: 2))
        return (coordinator, store)
    }

    /// Starting on the state in `place` fails with a sealed-state error that says `reason`.
    static func expectStartRefused(
        _ place: SealedStateTests.Place, _ platform: SimulatedPlatform, _ reason: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        await expectCode(.sealedState, saying: reason, sourceLocation: sourceLocation) {
            let (coordinator, store) = try await SealedStateTests.start(place, platform: platform)
            _ = coordinator
            await store.close()
        }
    }

    @Test func aCountPutBackOrDeletedWhileStoppedStopsStartUp() async throws {
        let platform = try SimulatedPlatform.generate()
        let place = SealedStateTests.Place()
        let (coordinator, store) = try await Self.startWithManifest(place, platform)
        try await Self.activate(coordinator, platform)
        let key = await coordinator.sealed.storageName("count/backend")
        let first = try #require(try await store.read(key))
        try await Self.activate(coordinator, platform)
        let second = try #require(try await store.read(key))
        await store.close()

        // A new process knows no version: the index it opens the state with does.
        try await SQLiteFile.overwrite(place.database, key: key, value: first.bytes, version: first.version)
        await Self.expectStartRefused(place, platform, "count/backend\" was put back to an older version")

        // Put back as it was, the state opens and the limit holds.
        try await SQLiteFile.overwrite(place.database, key: key, value: second.bytes, version: second.version)
        let (restarted, restartedStore) = try await SealedStateTests.start(place, platform: platform)
        #expect(try await restarted.activationCount("backend") == 2)
        await expectCode(.activationLimit) { try await Self.activate(restarted, platform) }
        await restartedStore.close()

        // Deleted, the count would start again at 0.
        try await SQLiteFile.delete(place.database, key: key)
        await Self.expectStartRefused(place, platform, "listed in the state's index is missing")
    }

    @Test func aCountDeletedWhileRunningIsRefused() async throws {
        let platform = try SimulatedPlatform.generate()
        let place = SealedStateTests.Place()
        let (coordinator, store) = try await Self.startWithManifest(place, platform)
        defer { Task { await store.close() } }
        try await Self.activate(coordinator, platform)
        let key = await coordinator.sealed.storageName("count/backend")
        try await SQLiteFile.delete(place.database, key: key)
        await expectCode(.sealedState, saying: "count/backend\" is listed") {
            try await Self.activate(coordinator, platform)
        }
    }

    /// The index put back together with the count it lists: the records written since (a count
    /// of another marble type, the newer count) are newer than that index.
    @Test func theIndexPutBackWithACountIsCaughtByWhatWasWrittenSince() async throws {
        let platform = try SimulatedPlatform.generate()
        let place = SealedStateTests.Place()
        let (coordinator, store) = try await Self.startWithManifest(place, platform)
        try await Self.activate(coordinator, platform)
        let countKey = await coordinator.sealed.storageName("count/backend")
        let indexKey = await coordinator.sealed.storageName(SealedStore.indexName)
        let count = try #require(try await store.read(countKey))
        let index = try #require(try await store.read(indexKey))
        try await Self.activate(coordinator, platform, type: "probe")
        try await Self.activate(coordinator, platform)

        // While running, the index alone below the version this Coordinator wrote is refused.
        let latestIndex = try #require(try await store.read(indexKey))
        try await SQLiteFile.overwrite(place.database, key: indexKey, value: index.bytes, version: index.version)
        await expectCode(.sealedState, saying: "\"index\" was put back") {
            try await Self.activate(coordinator, platform, type: "probe")
        }
        try await SQLiteFile.overwrite(
            place.database, key: indexKey, value: latestIndex.bytes, version: latestIndex.version)
        await store.close()

        try await SQLiteFile.overwrite(place.database, key: indexKey, value: index.bytes, version: index.version)
        try await SQLiteFile.overwrite(place.database, key: countKey, value: count.bytes, version: count.version)
        await Self.expectStartRefused(place, platform, "is newer than the state's index")
    }

    /// A replica that never read a record another replica wrote catches it put back: every
    /// request reads the index first, which lists the version the other replica wrote.
    @Test func aReplicaCatchesACountPutBackThatOnlyTheOtherReplicaWrote() async throws {
        let platform = try SimulatedPlatform.generate()
        let place = SealedStateTests.Place()
        let replicas = try await Replicas(place, platform)
        defer { Task { await replicas.store.close() } }
        let a = try await replicas.startWithManifest(maxActivations: 3)
        let b = try await replicas.start()
        try await Self.activate(a, platform)
        let key = await a.sealed.storageName("count/backend")
        let first = try #require(try await replicas.store.read(key))
        try await Self.activate(a, platform)

        try await SQLiteFile.overwrite(place.database, key: key, value: first.bytes, version: first.version)
        await expectCode(.sealedState, saying: "older version") {
            try await Self.activate(b, platform)
        }
    }

    /// Replicas count activations of types without a limit in shards, each listed in an index of
    /// its own (so replicas counting in different shards do not contend on one index record); a
    /// shard put back is caught against that index when a Coordinator opens the state.
    @Test func aCountShardPutBackIsCaughtByItsOwnIndex() async throws {
        let platform = try SimulatedPlatform.generate()
        let place = SealedStateTests.Place()
        let replicas = try await Replicas(place, platform)
        defer { Task { await replicas.store.close() } }
        let a = try await replicas.startWithManifest(maxActivations: 2)
        try await Self.activate(a, platform, type: "probe")
        var found: (key: String, shard: Int)?
        for shard in 0..<Coordinator.countShards {
            let key = await a.sealed.storageName("count-shard/\(shard)/probe")
            if try await replicas.store.read(key) != nil { found = (key, shard) }
        }
        let (key, shard) = try #require(found)
        let first = try #require(try await replicas.store.read(key))
        try await Self.activate(a, platform, type: "probe")
        #expect(try await a.activationCount("probe") == 2)
        let sealed = await a.sealed
        #expect(sealed.index.snapshot("index/\(shard)").index.versions[key] == first.version + 1)
        #expect(sealed.index.snapshot(SealedStore.indexName).index.versions[key] == nil)

        try await SQLiteFile.overwrite(place.database, key: key, value: first.bytes, version: first.version)
        await expectCode(.sealedState, saying: "count-shard/\(shard)/probe\" was put back") {
            _ = try await replicas.start()
        }
    }

    @Test func anActivationCountPutBackToAnOlderCiphertextIsRefused() async throws {
        let platform = try SimulatedPlatform.generate()
        let place = SealedStateTests.Place()
        let (coordinator, store) = try await SealedStateTests.start(place, platform: platform)
        defer { Task { await store.close() } }
        let enclave = ActivationManifest.enclave(on: platform)
        _ = try await coordinator.setManifest(
            CoordinatorFixture.manifest(signerID: enclave.signerID, maxActivations: 2))
        func activate() async throws {
            let marble = try TestMarble()
            _ = try await coordinator.activate(
                marble.request(platform, enclave: enclave, type: "backend"), peerCertificate: marble.certificate)
        }
        try await activate()
        let key = await coordinator.sealed.storageName("count/backend")
        let first = try #require(try await store.read(key))
        try await activate()
        let second = try #require(try await store.read(key))
        #expect(second.version == first.version + 1)

        // The older ciphertext under the newer version does not authenticate.
        try await SQLiteFile.overwrite(place.database, key: key, value: first.bytes, version: second.version)
        await expectCode(.sealedState) { try await activate() }
        // The older ciphertext with its own older version authenticates, but is below what was seen.
        try await SQLiteFile.overwrite(place.database, key: key, value: first.bytes, version: first.version)
        await expectCode(.sealedState, saying: "older version") {
            try await activate()
        }
        // Put back as it was, the limit still holds: nothing was counted by the refusals.
        try await SQLiteFile.overwrite(place.database, key: key, value: second.bytes, version: second.version)
        await expectCode(.activationLimit) { try await activate() }
        #expect(try await coordinator.activationCount("backend") == 2)
    }

    @Test func aMonotonicCounterPutBackIsRefused() async throws {
        let fixture = try await UserFixture.make(featureGates: ["MonotonicCounter"])
        defer { Task { await fixture.store.close() } }
        let coordinator = fixture.coordinator
        let uuid = UUID()
        func set(_ value: UInt64) async throws -> UInt64 {
            try await coordinator.setMonotonicCounter(marbleType: "backend", uuid: uuid, name: "c", value: value)
        }
        let before = Set(try await fixture.store.keys(withPrefix: "k/"))
        _ = try await set(5)
        let added = Set(try await fixture.store.keys(withPrefix: "k/")).subtracting(before)
        try #require(added.count == 1, "the counter is one record of its own: \(added)")
        let key = try #require(added.first)
        let five = try #require(try await fixture.store.read(key))
        #expect(try await set(9) == 5)
        try await SQLiteFile.overwrite(fixture.place.database, key: key, value: five.bytes, version: five.version)
        // Put back to 5, the counter would go backwards: 6 would be accepted as an increase.
        await expectCode(.sealedState) { _ = try await set(6) }
    }
}
