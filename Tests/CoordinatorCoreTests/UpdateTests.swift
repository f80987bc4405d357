import Attestation
import AuditLog
import CoordinatorCore
import Foundation
import Manifest
import CoordinatorTesting
import Testing
import X509

@Suite struct UpdateTests {
    static let raiseTo3 = Array(#"{"Packages": {"backend": {"SecurityVersion": 3}}}"#.utf8)

    @Test func aPackageUpdateRaisesTheSecurityVersionAndRenewsTheIntermediate() async throws {
        let fixture = try await UserFixture.make()
        try await fixture.setMarbleSecrets()
        let coordinator = fixture.coordinator
        let before = try await fixture.activate()
        let (root, intermediate) = (await coordinator.pki.root, await coordinator.pki.intermediate)
        let fingerprint = await coordinator.manifest?.fingerprint

        let result = try await coordinator.update(Self.raiseTo3, by: try await fixture.user(fixture.admin))
        #expect(result.missingAcknowledgments == 0 && result.missingUsers.isEmpty)
        await expectCode(.attestation) { _ = try await fixture.activate() }
        var newer = fixture.enclave
        newer.securityVersion = 3
        let after = try await fixture.activate(newer)
        #expect(after.env["SHARED_KEY"] == before.env["SHARED_KEY"], "symmetric shared keys are kept")
        #expect(await coordinator.pki.root == root)
        #expect(await coordinator.pki.intermediate != intermediate)
        #expect(await coordinator.manifest?.fingerprint == fingerprint, "the manifest as set does not change")
        let entries = try AuditLog.verify(try await coordinator.updateLog(), root: root)
        #expect(entries.last?.event == AuditEvent.packageUpdated && entries.last?.user == "admin")
        #expect(entries.last?.details == ["package": "backend", "securityVersion": "3"])

        // The raised version survives a restart; raising to the same version again is allowed.
        await fixture.store.close()
        let (restarted, store) = try await SealedStateTests.start(fixture.place, platform: fixture.platform)
        defer { Task { await store.close() } }
        let marble = try TestMarble()
        await expectCode(.attestation) {
            _ = try await restarted.activate(
                marble.request(fixture.platform, enclave: fixture.enclave, type: "backend"),
                peerCertificate: marble.certificate)
        }
        _ = try await restarted.update(
            Self.raiseTo3, by: try await restarted.authenticate(fixture.admin.certificateDER))
    }

    @Test func downgradesForbiddenAndMalformedPackageUpdatesChangeNothing() async throws {
        let fixture = try await UserFixture.make()
        let coordinator = fixture.coordinator
        let admin = try await fixture.user(fixture.admin)
        let reader = try await fixture.user(fixture.reader)
        let cases: [(CoordinatorError.Code, User, String)] = [
            (.invalidRequest, admin, #"{"Packages": {"backend": {"SecurityVersion": 1}}}"#),
            (.forbidden, reader, #"{"Packages": {"backend": {"SecurityVersion": 3}}}"#),
            (.forbidden, admin, #"{"Packages": {"frontend": {"SecurityVersion": 3}}}"#),
            (.invalidRequest, admin, #"{"Packages": {"backend": {"SecurityVersion": 3, "Debug": true}}}"#),
            (.invalidRequest, admin, #"{"Packages": {"backend": {"SecurityVersion": -1}}}"#),
            (.invalidRequest, admin, #"{"Packages": {"backend": {"SecurityVersion": 70000}}}"#),
            (.invalidRequest, admin, #"{"Packages": {"backend": {"SecurityVersion": "3"}}}"#),
            (.invalidRequest, admin, #"{"Packages": {}}"#),
            // Anything else is a full update proposal, which must be a valid manifest.
            (.invalidManifest, admin, #"{"Packages": 5}"#),
            (.invalidManifest, admin, "not json"),
        ]
        let intermediate = await coordinator.pki.intermediate
        for (code, user, text) in cases {
            await expectCode(code) { _ = try await coordinator.update(Array(text.utf8), by: user) }
        }
        #expect(try await coordinator.updateLog().count == 1)
        #expect(await coordinator.pki.intermediate == intermediate)
        await expectCode(.notFound) { _ = try await coordinator.pendingUpdate() }
        await fixture.store.close()
    }

    /// Two of three updaters must agree: the proposal counts as one, a different byte string is
    /// not an acknowledgement, the second acknowledgement applies the update.
    @Test func aFullUpdateAppliesWithTheThresholdOfAcknowledgements() async throws {
        let fixture = try await UserFixture.make(updaters: 2, updateThreshold: 2)
        try await fixture.setMarbleSecrets(key: Array(repeating: 0x11, count: 16))
        let coordinator = fixture.coordinator
        let (admin, reader) = (try await fixture.user(fixture.admin), try await fixture.user(fixture.reader))
        let (updater1, updater2) = (
            try await fixture.user(fixture.updaters[0]), try await fixture.user(fixture.updaters[1])
        )
        let before = try await fixture.activate()
        let intermediate = await coordinator.pki.intermediate
        let version2 = fixture.manifest(greeting: "version 2")

        let proposed = try await coordinator.update(version2, by: admin)
        #expect(proposed.missingAcknowledgments == 1 && proposed.missingUsers == ["updater1", "updater2"])
        #expect(try await coordinator.pendingUpdate().manifest == version2)
        #expect(try await fixture.activate().env["GREETING"] == Array("hello".utf8), "nothing applies yet")

        var reformatted = version2
        reformatted.append(UInt8(ascii: "\n"))
        await expectCode(.invalidRequest) { _ = try await coordinator.acknowledgeUpdate(reformatted, by: updater1) }
        await expectCode(.forbidden) { _ = try await coordinator.acknowledgeUpdate(version2, by: reader) }
        await expectCode(.conflict) { _ = try await coordinator.acknowledgeUpdate(version2, by: admin) }
        await expectCode(.conflict) {
            _ = try await coordinator.update(fixture.manifest(greeting: "other"), by: updater2)
        }
        #expect(try await coordinator.pendingUpdate().missingAcknowledgments == 1)

        let applied = try await coordinator.acknowledgeUpdate(version2, by: updater1)
        #expect(applied.missingAcknowledgments == 0)
        await expectCode(.notFound) { _ = try await coordinator.pendingUpdate() }
        #expect(await coordinator.manifest?.bytes == version2)
        #expect(await coordinator.pki.intermediate != intermediate)
        let after = try await fixture.activate()
        #expect(after.env["GREETING"] == Array("version 2".utf8))
        #expect(after.env["SHARED_KEY"] == before.env["SHARED_KEY"], "an unchanged symmetric key is kept")
        #expect(after.files["/etc/user-key"] == before.files["/etc/user-key"], "an unchanged user secret is kept")
        // A value written after the update is current; .Previous.Secrets keeps the one before it.
        let newKey = Array(repeating: UInt8(0x22), count: 16)
        try await coordinator.setSecrets(
            ["userKey": UserSecret(key: newKey)], by: try await fixture.user(fixture.writer))
        let rewritten = try await fixture.activate()
        #expect(rewritten.files["/etc/user-key"] == Array(Hex.encode(newKey).utf8))
        #expect(rewritten.env["PREVIOUS_KEY"] == Array(Hex.encode(Array(repeating: 0x11, count: 16)).utf8))

        let events = try AuditLog.verify(try await coordinator.updateLog(), root: await coordinator.pki.root)
            .map(\.event).suffix(4)
        #expect(
            Array(events) == [
                AuditEvent.updateProposed, AuditEvent.updateAcknowledged, AuditEvent.updateApplied,
                AuditEvent.secretsWritten,
            ])
        await fixture.store.close()
    }

    @Test func aPendingUpdateCanBeCancelledAndSurvivesARestart() async throws {
        let fixture = try await UserFixture.make(updaters: 2, updateThreshold: 3)
        let coordinator = fixture.coordinator
        let (admin, reader) = (try await fixture.user(fixture.admin), try await fixture.user(fixture.reader))
        let version2 = fixture.manifest(greeting: "version 2")
        #expect(try await coordinator.update(version2, by: admin).missingAcknowledgments == 2)
        await expectCode(.forbidden) { try await coordinator.cancelUpdate(by: reader) }
        await fixture.store.close()

        let (restarted, store) = try await SealedStateTests.start(fixture.place, platform: fixture.platform)
        defer { Task { await store.close() } }
        let pending = try await restarted.pendingUpdate()
        #expect(pending.manifest == version2 && pending.missingUsers == ["updater1", "updater2"])
        try await restarted.cancelUpdate(by: try await restarted.authenticate(fixture.updaters[1].certificateDER))
        await expectCode(.notFound) { _ = try await restarted.pendingUpdate() }
        await expectCode(.notFound) {
            try await restarted.cancelUpdate(by: try await restarted.authenticate(fixture.admin.certificateDER))
        }
        #expect(await restarted.manifest?.bytes == fixture.manifest())
        let events = try AuditLog.verify(try await restarted.updateLog(), root: await restarted.pki.root).map(\.event)
        #expect(events == [AuditEvent.manifestSet, AuditEvent.updateProposed, AuditEvent.updateCancelled])
    }

    @Test func anUpdaterAloneAppliesAnUpdateAtOnce() async throws {
        let fixture = try await UserFixture.make()
        try await fixture.setMarbleSecrets()
        let result = try await fixture.coordinator.update(
            fixture.manifest(greeting: "solo"), by: try await fixture.user(fixture.admin))
        #expect(result.missingAcknowledgments == 0)
        #expect(try await fixture.activate().env["GREETING"] == Array("solo".utf8))
        await fixture.store.close()
    }
}
