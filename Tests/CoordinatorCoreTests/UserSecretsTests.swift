import Attestation
import AuditLog
import CoordinatorCore
import CoordinatorTesting
import Crypto
import Foundation
import Manifest
import Store
import Testing
import X509
import _CryptoExtras

/// A Coordinator with the users manifest set, on an SQLite store in a fresh directory.
struct UserFixture {
    let place: SealedStateTests.Place
    let platform: SimulatedPlatform
    let enclave: SimulatedEnclave
    let admin: TestUser
    let reader: TestUser
    let writer: TestUser
    let updaters: [TestUser]
    let updateThreshold: Int
    var recoveryKeys: [TestRecoveryKey] = []
    var recoveryThreshold = 0
    var featureGates: [String] = []
    /// What setting the manifest returned: the recovery key holders' encrypted shares.
    var recoverySecrets: [String: [UInt8]] = [:]
    let coordinator: Coordinator
    let store: SQLiteStore

    /// With `updaters` more users allowed to update the manifest ("updater1", …).
    static func make(
        updaters: Int = 0, updateThreshold: Int = 0, recoveryKeys: [TestRecoveryKey] = [], recoveryThreshold: Int = 0,
        featureGates: [String] = [], collateralProvider: ((SimulatedPlatform) -> any CollateralProvider)? = nil
    ) async throws -> UserFixture {
        let platform = try SimulatedPlatform.generate()
        let (admin, reader, writer) = (
            try TestUser(name: "admin"), try TestUser(name: "reader"), try TestUser(name: "writer")
        )
        let extra = try (0..<updaters).map { try TestUser(name: "updater\($0 + 1)") }
        let place = SealedStateTests.Place()
        let (coordinator, store) = try await SealedStateTests.start(
            place, platform: platform, collateralProvider: collateralProvider?(platform))
        var fixture = UserFixture(
            place: place, platform: platform, enclave: ActivationManifest.enclave(on: platform), admin: admin,
            reader: reader, writer: writer, updaters: extra, updateThreshold: updateThreshold,
            recoveryKeys: recoveryKeys, recoveryThreshold: recoveryThreshold, featureGates: featureGates,
            coordinator: coordinator, store: store)
        fixture.recoverySecrets = try await coordinator.setManifest(fixture.manifest()).recoverySecrets
        return fixture
    }

    /// The fixture's manifest, with `greeting` telling versions apart.
    func manifest(greeting: String = "hello") -> [UInt8] {
        UserManifest.bytes(
            signerID: enclave.signerID, admin: admin, reader: reader, writer: writer, updaters: updaters,
            updateThreshold: updateThreshold, greeting: greeting, recoveryKeys: recoveryKeys,
            recoveryThreshold: recoveryThreshold, featureGates: featureGates)
    }

    /// Sets the user-defined secrets the marble's templates need.
    func setMarbleSecrets(key: [UInt8] = Array(repeating: 0x5a, count: 16)) async throws {
        try await coordinator.setSecrets(
            ["userKey": UserSecret(key: key), "userCert": try Self.certificateSecret()], by: try await user(admin))
    }

    /// Activates a new marble of `enclave` (default: the manifest's).
    func activate(_ enclave: SimulatedEnclave? = nil) async throws -> ActivationParameters {
        let marble = try TestMarble()
        return try await coordinator.activate(
            marble.request(platform, enclave: enclave ?? self.enclave, type: "backend"),
            peerCertificate: marble.certificate)
    }

    func user(_ test: TestUser) async throws -> User { try await coordinator.authenticate(test.certificateDER) }

    /// A P-256 certificate and its PKCS #8 key, as a user sets a cert-ecdsa secret.
    static func certificateSecret() throws -> UserSecret {
        let owner = try TestUser(name: "user cert")
        return UserSecret(cert: owner.certificateDER, privateKey: Array(owner.key.derRepresentation))
    }
}

/// Expects `body` to throw a ``CoordinatorError`` with `code`, and if given a message containing `saying`.
func expectCode(
    _ code: CoordinatorError.Code, saying: String? = nil, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Void
) async {
    await #expect(sourceLocation: sourceLocation) {
        try await body()
    } throws: { error in
        guard let error = error as? CoordinatorError, error.code == code else { return false }
        return saying.map { error.message.contains($0) } ?? true
    }
}

@Suite struct UserSecretsTests {
    @Test func usersAreAuthenticatedByTheirExactCertificate() async throws {
        let fixture = try await UserFixture.make()
        defer { Task { await fixture.store.close() } }
        #expect(try await fixture.user(fixture.admin).name == "admin")
        #expect(try await fixture.user(fixture.reader).name == "reader")
        await expectCode(.unauthenticated) { _ = try await fixture.coordinator.authenticate(nil) }
        await expectCode(.unauthenticated) { _ = try await fixture.coordinator.authenticate([]) }
        await expectCode(.unauthenticated) {
            _ = try await fixture.coordinator.authenticate(try TestUser(name: "admin").certificateDER)
        }
        // A certificate with one byte changed is another certificate.
        var changed = fixture.admin.certificateDER
        changed[changed.count - 1] ^= 1
        await expectCode(.unauthenticated) { _ = try await fixture.coordinator.authenticate(changed) }
    }

    @Test func rolesGrantExactlyTheirActionsAndNames() async throws {
        let fixture = try await UserFixture.make()
        defer { Task { await fixture.store.close() } }
        let admin = try await fixture.user(fixture.admin)
        let reader = try await fixture.user(fixture.reader)
        let writer = try await fixture.user(fixture.writer)
        #expect(admin.isGranted(.writeSecret, on: "userCert") && admin.isGranted(.readSecret, on: "userPlain"))
        #expect(!admin.isGranted(.readSecret, on: "sharedKey"))
        #expect(admin.isGranted(.updateSecurityVersion, on: "backend") && admin.isGranted(.updateManifest))
        #expect(reader.isGranted(.readSecret, on: "sharedKey"), "action names are case-insensitive")
        #expect(!reader.isGranted(.writeSecret, on: "userKey") && !reader.isGranted(.updateManifest))
        #expect(writer.isGranted(.writeSecret, on: "userKey") && !writer.isGranted(.readSecret, on: "userKey"))
        #expect(!writer.isGranted(.updateSecurityVersion, on: "backend"))
    }

    @Test func secretsAreReadOnlyByUsersAllowedToReadThem() async throws {
        let fixture = try await UserFixture.make()
        defer { Task { await fixture.store.close() } }
        let reader = try await fixture.user(fixture.reader)
        let admin = try await fixture.user(fixture.admin)
        let shared = try await fixture.coordinator.secrets(["sharedKey"], for: reader)
        #expect(shared["sharedKey"]?.privateKey.count == 32)
        await expectCode(.notFound) { _ = try await fixture.coordinator.secrets(["userKey"], for: reader) }
        await expectCode(.forbidden) { _ = try await fixture.coordinator.secrets(["sharedKey"], for: admin) }
        await expectCode(.forbidden) { _ = try await fixture.coordinator.secrets(["ownKey"], for: reader) }
        await expectCode(.forbidden) { _ = try await fixture.coordinator.secrets(["noSuchSecret"], for: reader) }
        await expectCode(.forbidden) {
            _ = try await fixture.coordinator.secrets(["sharedKey", "userPlain"], for: reader)
        }
        await expectCode(.invalidRequest) { _ = try await fixture.coordinator.secrets([], for: reader) }
    }

    @Test func usersSetTheSecretsTheyMayWriteAndMarblesSeeThem() async throws {
        let fixture = try await UserFixture.make()
        defer { Task { await fixture.store.close() } }
        let (admin, reader, writer) = (
            try await fixture.user(fixture.admin), try await fixture.user(fixture.reader),
            try await fixture.user(fixture.writer)
        )
        let marble = try TestMarble()
        // The marble's files name userKey and userCert: no activation before they are set.
        await expectCode(.invalidManifest) {
            _ = try await fixture.coordinator.activate(
                marble.request(fixture.platform, enclave: fixture.enclave, type: "backend"),
                peerCertificate: marble.certificate)
        }

        let key = Array(repeating: UInt8(0x5a), count: 16)
        try await fixture.coordinator.setSecrets(["userKey": UserSecret(key: key)], by: writer)
        #expect(try await fixture.coordinator.secrets(["userKey"], for: reader)["userKey"]?.privateKey == key)
        let certificate = try UserFixture.certificateSecret()
        try await fixture.coordinator.setSecrets(
            ["userCert": certificate, "userPlain": UserSecret(key: Array("plain text".utf8))], by: admin)
        let read = try await fixture.coordinator.secrets(["userCert", "userPlain"], for: admin)
        #expect(read["userCert"]?.cert == certificate.cert && read["userCert"]?.privateKey == certificate.privateKey)
        #expect(read["userPlain"]?.publicKey == Array("plain text".utf8))

        let parameters = try await fixture.coordinator.activate(
            marble.request(fixture.platform, enclave: fixture.enclave, type: "backend"),
            peerCertificate: marble.certificate)
        #expect(parameters.files["/etc/user-key"] == Array(Hex.encode(key).utf8))
        let pem = String(decoding: parameters.files["/etc/user-cert.pem"] ?? [], as: UTF8.self)
        #expect(try Certificate(pemEncoded: pem) == Certificate(derEncoded: certificate.cert ?? []))
    }

    @Test func badOrForbiddenWritesChangeNothing() async throws {
        let fixture = try await UserFixture.make()
        defer { Task { await fixture.store.close() } }
        let (admin, reader, writer) = (
            try await fixture.user(fixture.admin), try await fixture.user(fixture.reader),
            try await fixture.user(fixture.writer)
        )
        let coordinator = fixture.coordinator
        let good = UserSecret(key: Array(repeating: 1, count: 16))
        let rsaKey = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let rsaName = try DistinguishedName { CommonName("rsa") }
        let rsaCertificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(rsaKey.publicKey), notValidBefore: Date() - 60,
            notValidAfter: Date() + 3600, issuer: rsaName, subject: rsaName,
            signatureAlgorithm: .sha256WithRSAEncryption,
            extensions: Certificate.Extensions {}, issuerPrivateKey: .init(rsaKey))
        var mismatched = try UserFixture.certificateSecret()
        mismatched.privateKey = Array(P256.Signing.PrivateKey().derRepresentation)
        let cases: [(CoordinatorError.Code, User, [String: UserSecret])] = [
            (.forbidden, reader, ["userKey": good]),
            (.forbidden, writer, ["userPlain": UserSecret(key: [1])]),
            (.forbidden, writer, ["userKey": good, "userPlain": UserSecret(key: [1])]),
            (.forbidden, admin, ["sharedKey": good]),
            (.forbidden, admin, ["noSuchSecret": good]),
            (.invalidRequest, admin, ["userKey": UserSecret(key: Array(repeating: 1, count: 32))]),
            (.invalidRequest, admin, ["userKey": UserSecret(key: [])]),
            (.invalidRequest, admin, ["userKey": UserSecret(cert: try UserFixture.certificateSecret().cert, key: [1])]),
            (.invalidRequest, admin, ["userCert": UserSecret(key: Array(repeating: 1, count: 16))]),
            (.invalidRequest, admin, ["userCert": UserSecret(cert: Array("not a certificate".utf8))]),
            (.invalidRequest, admin, ["userCert": mismatched]),
            (.invalidRequest, admin, ["userCert": UserSecret(cert: try rsaCertificate.serializeAsPEM().derBytes)]),
            (
                .invalidRequest, admin,
                ["userCert": UserSecret(cert: try UserFixture.certificateSecret().cert, privateKey: [0x30, 0x00])]
            ),
            (.invalidRequest, admin, ["userPlain": UserSecret(cert: try UserFixture.certificateSecret().cert)]),
            // All or none: a good value next to a bad one is not written either.
            (.invalidRequest, admin, ["userKey": good, "userPlain": UserSecret(privateKey: [1])]),
            (.invalidRequest, admin, [:]),
        ]
        for (code, user, secrets) in cases {
            await expectCode(code) { try await coordinator.setSecrets(secrets, by: user) }
        }
        await expectCode(.notFound) { _ = try await coordinator.secrets(["userKey"], for: admin) }
        await expectCode(.notFound) { _ = try await coordinator.secrets(["userPlain"], for: admin) }
        #expect(try await coordinator.updateLog().count == 1, "only the manifest was logged")
    }

    @Test func theUpdateLogRecordsEveryChangeVerifiablyAndWithoutSecrets() async throws {
        let fixture = try await UserFixture.make()
        let (admin, writer) = (try await fixture.user(fixture.admin), try await fixture.user(fixture.writer))
        let key = Array(repeating: UInt8(0xc3), count: 16)
        try await fixture.coordinator.setSecrets(["userKey": UserSecret(key: key)], by: writer)
        try await fixture.coordinator.setSecrets(
            ["userCert": try UserFixture.certificateSecret(), "userPlain": UserSecret(key: Array("hush".utf8))],
            by: admin)
        let root = await fixture.coordinator.pki.root
        let lines = try await fixture.coordinator.updateLog()
        let entries = try AuditLog.verify(lines, root: root)
        #expect(entries.map(\.event) == [AuditEvent.manifestSet, AuditEvent.secretsWritten, AuditEvent.secretsWritten])
        #expect(entries.map(\.user) == [nil, "writer", "admin"])
        #expect(entries[0].details["manifestFingerprint"] == (await fixture.coordinator.manifest?.fingerprint))
        #expect(entries[2].details["secrets"] == "userCert,userPlain")
        let text = lines.map { String(decoding: $0, as: UTF8.self) }.joined(separator: "\n")
        #expect(!text.contains(Hex.encode(key)) && !text.contains(Data(key).base64EncodedString()))
        #expect(!text.contains("hush") && !text.contains(Data("hush".utf8).base64EncodedString()))
        await fixture.store.close()

        // A restart keeps the log, its chain and the secrets; the next entry continues the chain.
        let (restarted, store) = try await SealedStateTests.start(fixture.place, platform: fixture.platform)
        defer { Task { await store.close() } }
        #expect(try await restarted.updateLog() == lines)
        let reader = try await restarted.authenticate(fixture.reader.certificateDER)
        #expect(try await restarted.secrets(["userKey"], for: reader)["userKey"]?.privateKey == key)
        try await restarted.setSecrets(
            ["userKey": UserSecret(key: Array(repeating: 7, count: 16))],
            by: try await restarted.authenticate(fixture.writer.certificateDER))
        #expect(try AuditLog.verify(try await restarted.updateLog(), root: root).count == 4)
    }
}

@Suite struct SecretTemplateTests {
    /// A value a marble's template cannot use is refused when it is set, not at activation.
    @Test func aSecretThatWouldBreakAMarblesEnvironmentIsRefused() async throws {
        let platform = try SimulatedPlatform.generate()
        let enclave = ActivationManifest.enclave(on: platform)
        let writer = try TestUser(name: "writer")
        let manifest = """
            {
              "Packages": {"backend": {"SignerID": "\(Hex.encode(enclave.signerID))", "ProductID": 1, "SecurityVersion": 2}},
              "Marbles": {"backend": {"Package": "backend", "Parameters": {"Env": {"NOTE": "{{ string .Secrets.note }}"}}}},
              "Secrets": {"note": {"Type": "plain", "UserDefined": true}},
              "Users": {"writer": {"Certificate": "\(writer.certificatePEM.replacingOccurrences(of: "\n", with: "\\n"))", "Roles": ["noteWriter"]}},
              "Roles": {"noteWriter": {"ResourceType": "Secrets", "ResourceNames": ["note"], "Actions": ["WriteSecret"]}}
            }
            """
        let coordinator = try await Coordinator.start(
            verifier: platform.verifier, collateralProvider: platform.collateralProvider,
            store: MemoryStore(), sealer: EphemeralSealer())
        _ = try await coordinator.setManifest(Array(manifest.utf8))
        let user = try await coordinator.authenticate(writer.certificateDER)
        await expectCode(.invalidRequest) {
            try await coordinator.setSecrets(["note": UserSecret(key: [0x61, 0x00, 0x62])], by: user)
        }
        #expect(try await coordinator.updateLog().count == 1)
        try await coordinator.setSecrets(["note": UserSecret(key: Array("fine".utf8))], by: user)
        let marble = try TestMarble()
        let parameters = try await coordinator.activate(
            marble.request(platform, enclave: enclave, type: "backend"), peerCertificate: marble.certificate)
        #expect(parameters.env["NOTE"] == Array("fine".utf8))
    }
}
