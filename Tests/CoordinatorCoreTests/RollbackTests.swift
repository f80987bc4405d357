import Attestation
import CoordinatorTesting
import Foundation
import Store
import Testing

@testable import CoordinatorCore

/// Whoever can write the state database may put back an older ciphertext of a record, with
/// its older version, while the Coordinator runs. Each ciphertext authenticates only at its own
/// version, and a version below one this Coordinator already read or wrote is refused.
@Suite struct RollbackTests {
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
        await #expect {
            try await activate()
        } throws: { error in
            let error = error as? CoordinatorError
            return error?.code == .sealedState && error?.message.contains("older version") == true
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
