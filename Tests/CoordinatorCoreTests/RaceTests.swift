import Attestation
import AuditLog
import Foundation
import CoordinatorTesting
import Store
import Testing

@testable import CoordinatorCore

/// Requests that race on one Coordinator: each change is computed from one state and committed
/// only if that state is still current, so exactly one of two conflicting changes lands and no
/// acknowledged change is lost under another.
@Suite struct RaceTests {
    /// Two manifests posted at once: exactly one is set, the other is refused with a conflict,
    /// and nothing of the loser remains (its recovery key is not in the recovery data).
    @Test func twoConcurrentManifestsSetExactlyOne() async throws {
        let platform = try SimulatedPlatform.generate()
        let users = try ["admin", "reader", "writer"].map { try TestUser(name: $0) }
        let keys = try ["first", "second"].map { try TestRecoveryKey(name: $0) }
        let manifests = keys.map { key in
            UserManifest.bytes(
                signerID: ActivationManifest.enclave(on: platform).signerID, admin: users[0], reader: users[1],
                writer: users[2], greeting: key.name, recoveryKeys: [key])
        }
        for round in 0..<25 {
            // SQLite: its commits take long enough for the loser's checks to run in between.
            let place = SealedStateTests.Place()
            let (coordinator, store) = try await SealedStateTests.start(place, platform: platform)
            let outcomes = await withTaskGroup(of: (Int, CoordinatorError?).self) { group in
                for (index, manifest) in manifests.enumerated() {
                    // Jitter explores the interleavings: the loser's state check may fall anywhere
                    // in the winner's request, before or after its commit.
                    let delay = Int.random(in: 0...12)
                    group.addTask { () async -> (Int, CoordinatorError?) in
                        try? await Task.sleep(for: .milliseconds(delay))
                        do throws(CoordinatorError) {
                            _ = try await coordinator.setManifest(manifest)
                            return (index, nil)
                        } catch {
                            return (index, error)
                        }
                    }
                }
                return await group.reduce(into: [Int: CoordinatorError?]()) { $0[$1.0] = $1.1 }
            }
            let winners = outcomes.filter { $0.value == nil }.map { $0.key }
            try #require(winners.count == 1, "round \(round): \(outcomes)")
            let loser = 1 - winners[0]
            #expect(
                [CoordinatorError.Code.conflict, .wrongState].contains(outcomes[loser]??.code),
                "round \(round): \(String(describing: outcomes[loser]))")
            #expect(await coordinator.manifest?.bytes == manifests[winners[0]])
            let stored = try #require(try await store.read(RecoveryData.storeKey))
            let recovery = try RecoveryData.decode(stored.bytes)
            #expect(recovery.keys.keys.sorted() == [keys[winners[0]].name], "round \(round): stray recovery data")
            let log = try AuditLog.verify(try await coordinator.updateLog(), root: await coordinator.pki.root)
            #expect(log.map(\.event) == [AuditEvent.manifestSet], "round \(round): one manifest-set entry")
            await store.close()
        }
    }

    /// An update that changes the recovery keys (re-encrypting the whole state) and a secret
    /// write at the same time: whichever is acknowledged is there afterwards, and after a restart.
    @Test func aRecoveryKeyUpdateAndASecretWriteAtOnceLoseNeither() async throws {
        var bothAcknowledged = 0
        for round in 0..<12 {
            var fixture = try await UserFixture.make(recoveryKeys: [try TestRecoveryKey(name: "alice")])
            try await fixture.setMarbleSecrets()
            let admin = try await fixture.user(fixture.admin)
            fixture.recoveryKeys = [try TestRecoveryKey(name: "bob")]
            let update = fixture.manifest(greeting: "round \(round)")
            let value = [UInt8](repeating: UInt8(round + 1), count: 16)
            let coordinator = fixture.coordinator
            let delays = (Int.random(in: 0...12), Int.random(in: 0...12))
            async let updated: CoordinatorError? = { () async -> CoordinatorError? in
                try? await Task.sleep(for: .milliseconds(delays.0))
                do throws(CoordinatorError) {
                    _ = try await coordinator.update(update, by: admin)
                    return nil
                } catch { return error }
            }()
            async let written: CoordinatorError? = { () async -> CoordinatorError? in
                try? await Task.sleep(for: .milliseconds(delays.1))
                do throws(CoordinatorError) {
                    try await coordinator.setSecrets(["userKey": UserSecret(key: value)], by: admin)
                    return nil
                } catch { return error }
            }()
            let (updateError, writeError) = await (updated, written)
            for error in [updateError, writeError].compactMap({ $0 }) {
                #expect(error.code == .conflict, "round \(round): \(error)")
            }
            if updateError == nil && writeError == nil { bothAcknowledged += 1 }
            func check(_ coordinator: Coordinator, _ when: String) async throws {
                let admin = try await coordinator.authenticate(fixture.admin.certificateDER)
                let key = try await coordinator.secrets(["userKey"], for: admin)["userKey"]
                if writeError == nil {
                    #expect(key?.privateKey == value, "round \(round) \(when): the acknowledged secret write was lost")
                }
                if updateError == nil {
                    #expect(
                        await coordinator.manifest?.bytes == update,
                        "round \(round) \(when): the acknowledged update was lost")
                }
            }
            try await check(coordinator, "running")
            await fixture.store.close()
            let (restarted, store) = try await SealedStateTests.start(fixture.place, platform: fixture.platform)
            try await check(restarted, "after a restart")
            await store.close()
        }
        print("races: both acknowledged in \(bothAcknowledged) of 12 rounds")
    }
}
