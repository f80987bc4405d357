import Attestation
import AuditLog
import CoordinatorTesting
import Crypto
import Foundation
import Store
import Testing
import _CryptoExtras

@testable import CoordinatorCore

@Suite struct RecoveryTests {
    /// Destroys the simulation sealing key and opens the store again: recovery mode.
    static func loseSealingKeyAndReopen(_ fixture: UserFixture) async throws -> (RecoveryCoordinator, SQLiteStore) {
        await fixture.store.close()
        try FileManager.default.removeItem(
            at: fixture.place.directory.appendingPathComponent(SimulationSealer.fileName))
        let store = try await SQLiteStore.open(path: fixture.place.database)
        let opening = try await Coordinator.open(
            verifier: fixture.platform.verifier,
            collateralProvider: fixture.platform.collateralProvider, store: store,
            sealer: SimulationSealer(directory: fixture.place.directory))
        guard case .recovery(let recovery) = opening else {
            await store.close()
            throw TestFailure("expected recovery mode")
        }
        return (recovery, store)
    }

    static func share(_ fixture: UserFixture, _ holder: TestRecoveryKey) throws -> [UInt8] {
        try holder.decrypt(try #require(fixture.recoverySecrets[holder.name]))
    }

    /// Three recovery keys, threshold 2: after the sealing key is lost, two signed shares bring
    /// back the same root, secrets and counts; bad signatures and unknown keys are refused.
    @Test func twoOfThreeSignedSharesRecoverTheState() async throws {
        let holders = try ["alice", "bob", "carol"].map { try TestRecoveryKey(name: $0) }
        let fixture = try await UserFixture.make(recoveryKeys: holders, recoveryThreshold: 2)
        #expect(fixture.recoverySecrets.keys.sorted() == ["alice", "bob", "carol"])
        try await fixture.setMarbleSecrets()
        let parameters = try await fixture.activate()
        let root = await fixture.coordinator.pki.root
        let log = try await fixture.coordinator.updateLog()

        let (recovery, store) = try await Self.loseSealingKeyAndReopen(fixture)
        #expect(await recovery.remaining == 2)
        #expect(recovery.reason.contains("recovery"))
        await expectCode(.sealedState) {
            _ = try await Coordinator.start(
                verifier: fixture.platform.verifier,
                collateralProvider: fixture.platform.collateralProvider, store: store,
                sealer: SimulationSealer(directory: fixture.place.directory))
        }

        let aliceShare = try Self.share(fixture, holders[0])
        let bobShare = try Self.share(fixture, holders[1])
        #expect(aliceShare.count == 33)
        // A signature over another share, by a stranger, or none: refused, nothing counted.
        await expectCode(.forbidden) {
            _ = try await recovery.recover(secret: aliceShare, signature: try holders[0].sign(bobShare))
        }
        let stranger = try TestRecoveryKey(name: "mallory")
        await expectCode(.forbidden) {
            _ = try await recovery.recover(secret: aliceShare, signature: try stranger.sign(aliceShare))
        }
        await expectCode(.forbidden) { _ = try await recovery.recover(secret: aliceShare, signature: []) }
        await expectCode(.invalidRequest) { _ = try await recovery.recover(secret: [1, 2, 3], signature: []) }
        #expect(await recovery.remaining == 2)

        #expect(try await recovery.recover(secret: aliceShare, signature: try holders[0].sign(aliceShare)) == 1)
        #expect(try await recovery.recover(secret: aliceShare, signature: try holders[0].sign(aliceShare)) == 1)
        // Bob sends his share encrypted to the ephemeral recovery key.
        let ephemeral = try _RSA.Encryption.PublicKey(derRepresentation: await recovery.ephemeralPublicKey)
        let encrypted = Array(try ephemeral.encrypt(bobShare, padding: .PKCS1_OAEP_SHA256))
        #expect(try await recovery.recover(secret: encrypted, signature: try holders[1].sign(bobShare)) == 0)
        #expect(await recovery.isRecovered)
        await store.close()

        let (restarted, restartedStore) = try await SealedStateTests.start(fixture.place, platform: fixture.platform)
        defer { Task { await restartedStore.close() } }
        #expect(await restarted.pki.root == root)
        #expect(try await restarted.activationCount("backend") == 1)
        let admin = try await restarted.authenticate(fixture.admin.certificateDER)
        #expect(try await restarted.secrets(["userKey"], for: admin)["userKey"]?.privateKey.count == 16)
        let marble = try TestMarble()
        let again = try await restarted.activate(
            marble.request(fixture.platform, enclave: fixture.enclave, type: "backend"),
            peerCertificate: marble.certificate)
        #expect(again.env["SHARED_KEY"] == parameters.env["SHARED_KEY"])
        let entries = try AuditLog.verify(try await restarted.updateLog(), root: root)
        #expect(entries.count == log.count + 1)
        #expect(entries.last?.event == AuditEvent.recovered && entries.last?.details["recoveryKeys"] == "alice,bob")
    }

    @Test func oneKeyHoldsTheDataKeyAndXORSharesNeedEveryKey() async throws {
        let single = try TestRecoveryKey(name: "only")
        let one = try await UserFixture.make(recoveryKeys: [single])
        let (recovery, store) = try await Self.loseSealingKeyAndReopen(one)
        let share = try Self.share(one, single)
        #expect(share.count == 32)
        #expect(try await recovery.recover(secret: share, signature: try single.sign(share)) == 0)
        await store.close()
        _ = try await SealedStateTests.start(one.place, platform: one.platform).1.close()

        let pair = try ["first", "second"].map { try TestRecoveryKey(name: $0) }
        let two = try await UserFixture.make(recoveryKeys: pair)
        let (xorRecovery, xorStore) = try await Self.loseSealingKeyAndReopen(two)
        defer { Task { await xorStore.close() } }
        #expect(await xorRecovery.remaining == 2)
        let first = try Self.share(two, pair[0])
        #expect(try await xorRecovery.recover(secret: first, signature: try pair[0].sign(first)) == 1)
        let second = try Self.share(two, pair[1])
        #expect(try await xorRecovery.recover(secret: second, signature: try pair[1].sign(second)) == 0)
    }

    /// A share signed by its holder but wrong (changed) does not rebuild the key: recovery says
    /// so, keeps the state sealed, and starts collecting again.
    @Test func aWrongButSignedShareIsDetectedAndChangesNothing() async throws {
        let holders = try ["alice", "bob", "carol"].map { try TestRecoveryKey(name: $0) }
        let fixture = try await UserFixture.make(recoveryKeys: holders, recoveryThreshold: 2)
        let (recovery, store) = try await Self.loseSealingKeyAndReopen(fixture)
        defer { Task { await store.close() } }
        var wrong = try Self.share(fixture, holders[0])
        wrong[3] ^= 0x40
        let bob = try Self.share(fixture, holders[1])
        _ = try await recovery.recover(secret: wrong, signature: try holders[0].sign(wrong))
        await expectCode(.invalidRequest) {
            _ = try await recovery.recover(secret: bob, signature: try holders[1].sign(bob))
        }
        let (remaining, recovered) = (await recovery.remaining, await recovery.isRecovered)
        #expect(remaining == 2 && !recovered)
        let carol = try Self.share(fixture, holders[2])
        _ = try await recovery.recover(secret: carol, signature: try holders[2].sign(carol))
        #expect(try await recovery.recover(secret: bob, signature: try holders[1].sign(bob)) == 0)
    }

    @Test func withoutRecoveryKeysALostSealingKeyStopsStartUp() async throws {
        let fixture = try await UserFixture.make()
        #expect(fixture.recoverySecrets.isEmpty)
        await fixture.store.close()
        try FileManager.default.removeItem(
            at: fixture.place.directory.appendingPathComponent(SimulationSealer.fileName))
        await expectCode(.sealedState) {
            _ = try await SealedStateTests.start(fixture.place, platform: fixture.platform)
        }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

@Suite struct RecoveryKeyUpdateTests {
    /// An update that changes the recovery keys moves the state to a new data key: the removed
    /// holder's share (here the old data key itself) opens nothing anymore, the state survives a
    /// restart, and only the new holders can recover.
    @Test func newRecoveryKeysReEncryptTheStateAndLockOldHoldersOut() async throws {
        let alice = try TestRecoveryKey(name: "alice")
        var fixture = try await UserFixture.make(recoveryKeys: [alice])
        try await fixture.setMarbleSecrets()
        _ = try await fixture.activate()
        let aliceShare = try RecoveryTests.share(fixture, alice)
        let oldState = SealedStore(store: fixture.store, dataKey: aliceShare)
        #expect(try await oldState.read("core") != nil, "one key: the share is the data key")
        // The store's own open path, as a control: before the update the old key opens every record.
        for key in try await fixture.store.keys(withPrefix: "k/") + fixture.store.keys(withPrefix: "o/") {
            let record = try #require(try await fixture.store.read(key))
            #expect(oldState.open(record.bytes, storageName: key, version: record.version) != nil)
        }

        let newHolders = try ["bob", "carol"].map { try TestRecoveryKey(name: $0) }
        fixture.recoveryKeys = newHolders
        let result = try await fixture.coordinator.update(
            fixture.manifest(greeting: "new keys"), by: try await fixture.user(fixture.admin))
        #expect(result.missingAcknowledgments == 0)
        #expect(result.recoverySecrets.keys.sorted() == ["bob", "carol"])
        fixture.recoverySecrets = result.recoverySecrets
        #expect(
            try await SealedStore(store: fixture.store, dataKey: aliceShare).read("core") == nil,
            "the old data key names no record anymore")
        for key in try await fixture.store.keys(withPrefix: "k/") + fixture.store.keys(withPrefix: "o/") {
            let record = try #require(try await fixture.store.read(key))
            #expect(
                oldState.open(record.bytes, storageName: key, version: record.version) == nil,
                "record \(key) opens under the old key")
        }
        // Everything moved: a restart finds the same secrets, counts and log.
        let entries = try await fixture.coordinator.updateLog()
        await fixture.store.close()
        let (restarted, restartedStore) = try await SealedStateTests.start(fixture.place, platform: fixture.platform)
        #expect(try await restarted.updateLog() == entries)
        #expect(try await restarted.activationCount("backend") == 1)
        let admin = try await restarted.authenticate(fixture.admin.certificateDER)
        #expect(try await restarted.secrets(["userKey"], for: admin)["userKey"]?.privateKey.count == 16)
        await restartedStore.close()

        let (recovery, store) = try await RecoveryTests.loseSealingKeyAndReopen(
            UserFixture(
                place: fixture.place, platform: fixture.platform, enclave: fixture.enclave, admin: fixture.admin,
                reader: fixture.reader, writer: fixture.writer, updaters: [], updateThreshold: 0,
                recoveryKeys: newHolders, recoverySecrets: fixture.recoverySecrets, coordinator: restarted,
                store: try await SQLiteStore.open(path: fixture.place.database)))
        defer { Task { await store.close() } }
        await expectCode(.forbidden) {
            _ = try await recovery.recover(secret: aliceShare, signature: try alice.sign(aliceShare))
        }
        for holder in newHolders {
            let share = try RecoveryTests.share(fixture, holder)
            _ = try await recovery.recover(secret: share, signature: try holder.sign(share))
        }
        #expect(await recovery.isRecovered)
    }
}

/// The recovery data is plaintext the host can change: any change is refused or caught.
@Suite struct RecoveryDataTests {
    @Test func storedRecoveryDataRoundTripsAndAnyChangeIsCaught() throws {
        let holders = try ["a", "b", "c"].map { try TestRecoveryKey(name: $0) }
        let dataKey = Array(repeating: UInt8(3), count: 32)
        let made = try #require(
            try RecoveryData.make(
                dataKey: dataKey,
                recoveryKeys: Dictionary(uniqueKeysWithValues: holders.map { ($0.name, $0.publicKeyPEM) }),
                threshold: 2))
        let encoded = made.data.encoded()
        let decoded = try RecoveryData.decode(encoded)
        #expect(decoded == made.data && decoded.isAuthentic(dataKey: dataKey))
        #expect(!decoded.isAuthentic(dataKey: Array(repeating: 4, count: 32)))
        var lowered = decoded
        lowered.threshold = 1
        #expect(!lowered.isAuthentic(dataKey: dataKey), "a changed threshold breaks the MAC")
        for length in stride(from: 0, to: encoded.count, by: 7) {
            #expect(throws: CoordinatorError.self) { _ = try RecoveryData.decode(Array(encoded.prefix(length))) }
        }
        for text in ["null", "[]", #"{"format":2}"#, #"{"format":1,"keys":{},"mode":"xor","threshold":1,"mac":""}"#] {
            #expect(throws: CoordinatorError.self) { _ = try RecoveryData.decode(Array(text.utf8)) }
        }
    }
}
