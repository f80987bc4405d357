import Attestation
import CoordinatorCore
import CoordinatorTesting
import Crypto
import Foundation
import Manifest
import Store
import Testing
import X509

/// The Coordinator's state survives restarts in its SQLite file, sealed with the simulation
/// sealer; tampered, truncated or foreign state stops start-up and is never replaced.
@Suite struct SealedStateTests {
    struct Place {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("seal-\(UUID().uuidString)")
        var database: String { directory.appendingPathComponent("state.sqlite").path }
    }

    static func start(
        _ place: Place, platform: SimulatedPlatform, sealDirectory: URL? = nil,
        collateralProvider: (any CollateralProvider)? = nil
    ) async throws -> (Coordinator, SQLiteStore) {
        try FileManager.default.createDirectory(at: place.directory, withIntermediateDirectories: true)
        let store = try await SQLiteStore.open(path: place.database)
        do {
            let coordinator = try await Coordinator.start(
                verifier: platform.verifier,
                collateralProvider: collateralProvider ?? platform.collateralProvider, store: store,
                sealer: SimulationSealer(directory: sealDirectory ?? place.directory))
            return (coordinator, store)
        } catch {
            await store.close()
            throw error
        }
    }

    @Test func aRestartKeepsRootManifestSecretsAndCounts() async throws {
        let place = Place()
        let platform = try SimulatedPlatform.generate()
        let enclave = ActivationManifest.enclave(on: platform)
        let marble = try TestMarble()
        let manifest = CoordinatorFixture.manifest(signerID: enclave.signerID, maxActivations: 3)

        let (first, firstStore) = try await Self.start(place, platform: platform)
        _ = try await first.setManifest(manifest)
        let uuid = UUID()
        let before = try await first.activate(
            marble.request(platform, enclave: enclave, type: "backend", uuid: uuid), peerCertificate: marble.certificate
        )
        let root = await first.pki.root
        await firstStore.close()

        let (second, secondStore) = try await Self.start(place, platform: platform)
        #expect(await second.pki.root == root)
        #expect(await second.state == .acceptingMarbles)
        #expect(await second.manifest?.fingerprint == ManifestDocument.fingerprint(of: manifest))
        #expect(try await second.activationCount("backend") == 1)
        let again = try await second.activate(
            marble.request(platform, enclave: enclave, type: "backend", uuid: uuid), peerCertificate: marble.certificate
        )
        #expect(again.env["SHARED_KEY"] == before.env["SHARED_KEY"])
        #expect(again.env["OWN_KEY"] == before.env["OWN_KEY"])
        #expect(again.files["/etc/cert.pem"] == before.files["/etc/cert.pem"])
        #expect(try await second.activationCount("backend") == 2, "a re-activation counts too")
        _ = try await second.activate(
            marble.request(platform, enclave: enclave, type: "backend"), peerCertificate: marble.certificate)
        await #expect {
            _ = try await second.activate(
                marble.request(platform, enclave: enclave, type: "backend"), peerCertificate: marble.certificate)
        } throws: { ($0 as? CoordinatorError)?.code == .activationLimit }
        await secondStore.close()

        let keyFile = place.directory.appendingPathComponent(SimulationSealer.fileName).path
        let permissions = try FileManager.default.attributesOfItem(atPath: keyFile)[.posixPermissions] as? NSNumber
        #expect(permissions?.intValue == 0o600)
    }

    /// Many activations at once on the SQLite store: group commits count every one, the limit
    /// holds exactly, and a restart sees the same count.
    @Test func concurrentActivationsAreCountedExactlyUpToTheLimit() async throws {
        let place = Place()
        let platform = try SimulatedPlatform.generate()
        let enclave = ActivationManifest.enclave(on: platform)
        let (coordinator, store) = try await Self.start(place, platform: platform)
        _ = try await coordinator.setManifest(
            CoordinatorFixture.manifest(signerID: enclave.signerID, maxActivations: 10))
        let marbles = try (0..<40).map { _ in try TestMarble() }
        let requests = try marbles.map { try $0.request(platform, enclave: enclave, type: "backend") }
        let outcomes = await withTaskGroup(of: CoordinatorError?.self) { group in
            for (marble, request) in zip(marbles, requests) {
                group.addTask {
                    do throws(CoordinatorError) {
                        _ = try await coordinator.activate(request, peerCertificate: marble.certificate)
                        return nil
                    } catch {
                        return error
                    }
                }
            }
            var outcomes: [CoordinatorError?] = []
            for await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
        #expect(outcomes.filter { $0 == nil }.count == 10)
        #expect(outcomes.compactMap { $0 }.allSatisfy { $0.code == .activationLimit })
        #expect(try await coordinator.activationCount("backend") == 10)
        await store.close()

        // One UUID activated many times at once counts every time, up to the limit (a later
        // batch's write of the UUID record conflicts and re-reads it).
        let (again, againStore) = try await Self.start(Place(), platform: platform)
        _ = try await again.setManifest(CoordinatorFixture.manifest(signerID: enclave.signerID, maxActivations: 10))
        let uuid = UUID()
        let sameUUID = try marbles.prefix(12).map {
            try $0.request(platform, enclave: enclave, type: "backend", uuid: uuid)
        }
        let accepted = await withTaskGroup(of: Bool.self) { group in
            for (marble, request) in zip(marbles, sameUUID) {
                group.addTask { (try? await again.activate(request, peerCertificate: marble.certificate)) != nil }
            }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(accepted == 10)
        #expect(try await again.activationCount("backend") == 10)
        await againStore.close()
        let (restarted, restartedStore) = try await Self.start(place, platform: platform)
        #expect(try await restarted.activationCount("backend") == 10)
        await restartedStore.close()
    }

    @Test func aTamperedRecordStopsStartUp() async throws {
        let place = Place()
        let platform = try SimulatedPlatform.generate()
        let (coordinator, store) = try await Self.start(place, platform: platform)
        _ = try await coordinator.setManifest(CoordinatorFixture.manifest(signerID: platform.defaultSigner.signerID))
        // Flip one byte in every sealed record, one record at a time.
        for key in try await store.keys(withPrefix: "k/") + store.keys(withPrefix: "o/") {
            let original = try #require(try await store.read(key))
            var flipped = original.bytes
            flipped[flipped.count / 2] ^= 0x01
            try await store.commit([StoreWrite(key: key, value: flipped, expectedVersion: original.version)])
            await #expect {
                _ = try await Coordinator.start(
                    verifier: platform.verifier, collateralProvider: platform.collateralProvider,
                    store: store,
                    sealer: SimulationSealer(directory: place.directory))
            } throws: { error in
                guard let error = error as? CoordinatorError else { return false }
                return error.code == .sealedState && error.message.contains("tampered")
            }
            // Back as it was (ciphertexts authenticate only at their own version), the state opens
            // again: the next record's refusal is its own.
            try await SQLiteFile.overwrite(place.database, key: key, value: original.bytes, version: original.version)
            _ = try await Coordinator.start(
                verifier: platform.verifier, collateralProvider: platform.collateralProvider,
                store: store, sealer: SimulationSealer(directory: place.directory))
        }
        await store.close()
    }

    @Test func anotherSealingKeyCannotOpenTheState() async throws {
        let place = Place()
        let platform = try SimulatedPlatform.generate()
        let (_, store) = try await Self.start(place, platform: platform)
        await store.close()
        let elsewhere = FileManager.default.temporaryDirectory.appendingPathComponent("other-\(UUID().uuidString)")
        await #expect {
            _ = try await Self.start(place, platform: platform, sealDirectory: elsewhere)
        } throws: { error in
            guard let error = error as? CoordinatorError else { return false }
            return error.code == .sealedState && error.message.contains("cannot unseal")
        }
    }

    @Test func aDamagedDatabaseFileStopsStartUp() async throws {
        let place = Place()
        let platform = try SimulatedPlatform.generate()
        let (coordinator, store) = try await Self.start(place, platform: platform)
        _ = try await coordinator.setManifest(CoordinatorFixture.manifest(signerID: platform.defaultSigner.signerID))
        await store.close()
        var bytes = try Data(contentsOf: URL(fileURLWithPath: place.database))
        bytes = bytes.prefix(bytes.count / 2)  // truncated
        try bytes.write(to: URL(fileURLWithPath: place.database))
        try? FileManager.default.removeItem(atPath: place.database + "-wal")
        await #expect {
            _ = try await Self.start(place, platform: platform)
        } throws: { error in
            if let error = error as? StoreError { return [.corrupt, .unavailable].contains(error.code) }
            if let error = error as? CoordinatorError { return [.sealedState, .storeUnavailable].contains(error.code) }
            return false
        }
    }
}
