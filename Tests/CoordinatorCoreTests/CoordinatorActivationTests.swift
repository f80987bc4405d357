import Attestation
import CoordinatorCore
import Crypto
import Foundation
import Manifest
import CoordinatorTesting
import Store
import SwiftASN1
import Testing
import X509

extension TestMarble {
    func request(
        _ platform: SimulatedPlatform, enclave: SimulatedEnclave, type: String, uuid: UUID = UUID(),
        boundTo other: [UInt8]? = nil
    )
        throws -> ActivationRequest
    {
        ActivationRequest(
            quote: try quote(platform, enclave: enclave, boundTo: other), csr: csr, marbleType: type,
            uuid: uuid.uuidString)
    }
}

struct CoordinatorFixture {
    let platform: SimulatedPlatform
    let coordinator: Coordinator
    let enclave: SimulatedEnclave

    static func manifest(signerID: [UInt8], maxActivations: Int = 2, debug: Bool = false) -> [UInt8] {
        ActivationManifest.bytes(signerID: signerID, maxActivations: maxActivations, debug: debug)
    }

    static func make(configuration: SimulatedPlatform.Configuration = .init(), maxActivations: Int = 2) async throws
        -> CoordinatorFixture
    {
        let platform = try SimulatedPlatform.generate(configuration: configuration)
        let coordinator = try await Coordinator.start(
            verifier: platform.verifier, collateralProvider: platform.collateralProvider,
            store: MemoryStore(),
            sealer: EphemeralSealer())
        let enclave = ActivationManifest.enclave(on: platform)
        _ = try await coordinator.setManifest(manifest(signerID: enclave.signerID, maxActivations: maxActivations))
        return CoordinatorFixture(platform: platform, coordinator: coordinator, enclave: enclave)
    }
}

func pemBlocks(_ bytes: [UInt8]?) -> [[UInt8]] {
    guard let bytes else { return [] }
    let text = String(decoding: bytes, as: UTF8.self)
    return text.components(separatedBy: "-----END ").compactMap { part -> [UInt8]? in
        guard
            let start = part.range(
                of: "-----\n", options: [], range: part.range(of: "-----BEGIN ").map { $0.upperBound..<part.endIndex })
        else { return nil }
        let body = part[start.upperBound...].filter { !$0.isWhitespace }
        guard !body.isEmpty else { return nil }
        return Data(base64Encoded: String(body)).map(Array.init)
    }
}

@Suite struct CoordinatorActivationTests {
    @Test func activatesAnAttestedMarbleWithCertificateSecretsAndParameters() async throws {
        let fixture = try await CoordinatorFixture.make()
        let marble = try TestMarble()
        let uuid = UUID()
        let parameters = try await fixture.coordinator.activate(
            marble.request(fixture.platform, enclave: fixture.enclave, type: "backend", uuid: uuid),
            peerCertificate: marble.certificate)

        #expect(parameters.argv == ["backend", "--serve"])
        #expect(parameters.env["GREETING"] == Array("hi".utf8))
        #expect(parameters.env["SHARED_KEY"]?.count == 64)
        #expect(parameters.env["OWN_KEY"]?.count == 32)
        let chain = pemBlocks(parameters.env[PredefinedEnvironment.certificateChain])
        #expect(chain.count == 2)
        let leaf = try Certificate(derEncoded: chain[0])
        let marbleRoot = try Certificate(derEncoded: chain[1])
        let pki = await fixture.coordinator.pki
        #expect(marbleRoot == pki.marbleRoot)
        #expect(leaf.subject.description.contains(uuid.uuidString.lowercased()))
        #expect(marbleRoot.publicKey.isValidSignature(leaf.signature, for: leaf))
        #expect(pki.intermediate.publicKey.isValidSignature(leaf.signature, for: leaf))
        #expect(pki.root.publicKey.isValidSignature(pki.intermediate.signature, for: pki.intermediate))
        let typeExtension = try #require(leaf.extensions.first { $0.oid == CoordinatorPKI.marbleTypeOID })
        #expect(Array(typeExtension.value) == Array("backend".utf8))
        #expect(try leaf.extensions.subjectAlternativeNames?.contains(.dnsName("localhost")) == true)
        #expect(leaf.notValidAfter < Date().addingTimeInterval(366 * 86_400))
        // The private key handed over belongs to the issued certificate.
        let keyDER = try #require(pemBlocks(parameters.env[PredefinedEnvironment.privateKey]).first)
        let key = try P256.Signing.PrivateKey(derRepresentation: keyDER)
        #expect(Certificate.PublicKey(key.publicKey) == leaf.publicKey)
        #expect(
            pemBlocks(parameters.env[PredefinedEnvironment.coordinatorRootCA]).first.map {
                try? Certificate(derEncoded: $0)
            } == pki.root)
        #expect(pemBlocks(parameters.files["/etc/root.pem"]) == [chain[1]])
        let ttls = try #require(parameters.env[PredefinedEnvironment.ttlsConfig])
        let ttlsObject = try #require(
            try JSONSerialization.jsonObject(with: Data(ttls)) as? [String: [String: [String: Any]]])
        #expect(ttlsObject["tls"]?["Outgoing"]?["db:5432"] != nil)
        #expect(ttlsObject["tls"]?["Incoming"]?["*:8443"] != nil)
        #expect(try await fixture.coordinator.activationCount("backend") == 1)
    }

    @Test func perMarbleKeysAreDerivedFromTheUUIDAndEveryActivationCounts() async throws {
        let fixture = try await CoordinatorFixture.make(maxActivations: 5)
        let marble = try TestMarble()
        let uuid = UUID()
        let first = try await fixture.coordinator.activate(
            marble.request(fixture.platform, enclave: fixture.enclave, type: "backend", uuid: uuid),
            peerCertificate: marble.certificate)
        let again = try await fixture.coordinator.activate(
            marble.request(fixture.platform, enclave: fixture.enclave, type: "backend", uuid: uuid),
            peerCertificate: marble.certificate)
        let other = try await fixture.coordinator.activate(
            marble.request(fixture.platform, enclave: fixture.enclave, type: "backend"),
            peerCertificate: marble.certificate)
        #expect(first.env["OWN_KEY"] == again.env["OWN_KEY"])
        #expect(first.env["OWN_KEY"] != other.env["OWN_KEY"])
        #expect(first.env["SHARED_KEY"] == other.env["SHARED_KEY"])
        #expect(first.files["/etc/cert.pem"] == other.files["/etc/cert.pem"])
        #expect(try await fixture.coordinator.activationCount("backend") == 3)
    }

    /// MarbleRun counts every activation: one UUID does not let a host start many copies of a
    /// `MaxActivations: 1` marble.
    @Test func aKnownUUIDDoesNotGetPastTheLimit() async throws {
        let fixture = try await CoordinatorFixture.make(maxActivations: 1)
        let marble = try TestMarble()
        let uuid = UUID()
        _ = try await fixture.coordinator.activate(
            marble.request(fixture.platform, enclave: fixture.enclave, type: "backend", uuid: uuid),
            peerCertificate: marble.certificate)
        await #expect {
            _ = try await fixture.coordinator.activate(
                marble.request(fixture.platform, enclave: fixture.enclave, type: "backend", uuid: uuid),
                peerCertificate: marble.certificate)
        } throws: { ($0 as? CoordinatorError)?.code == .activationLimit }
        #expect(try await fixture.coordinator.activationCount("backend") == 1)
    }

    @Test func aKnownUUIDPresentedForAnotherMarbleTypeIsRefused() async throws {
        let platform = try SimulatedPlatform.generate()
        let coordinator = try await Coordinator.start(
            verifier: platform.verifier, collateralProvider: platform.collateralProvider,
            store: MemoryStore(), sealer: EphemeralSealer())
        let enclave = ActivationManifest.enclave(on: platform)
        var manifest = try #require(
            try JSONSerialization.jsonObject(
                with: Data(CoordinatorFixture.manifest(signerID: enclave.signerID, maxActivations: 0)))
                as? [String: Any])
        var marbles = try #require(manifest["Marbles"] as? [String: Any])
        marbles["frontend"] = ["Package": "backend"]
        manifest["Marbles"] = marbles
        _ = try await coordinator.setManifest(Array(try JSONSerialization.data(withJSONObject: manifest)))
        let marble = try TestMarble()
        let uuid = UUID()
        _ = try await coordinator.activate(
            marble.request(platform, enclave: enclave, type: "backend", uuid: uuid), peerCertificate: marble.certificate
        )
        await #expect {
            _ = try await coordinator.activate(
                marble.request(platform, enclave: enclave, type: "frontend", uuid: uuid),
                peerCertificate: marble.certificate)
        } throws: { ($0 as? CoordinatorError)?.code == .invalidRequest }
        #expect(try await coordinator.activationCount("frontend") == 0)
        #expect(try await coordinator.activationCount("backend") == 1)
    }

    enum Rejection: String, CaseIterable {
        case otherSigner, olderVersion, debugEnclave, outdatedPlatform, replayedQuote, unknownType, limitReached,
            badCSR, badUUID, csrForAnotherKey
    }

    @Test(arguments: Rejection.allCases)
    func rejectsAndChangesNothing(_ rejection: Rejection) async throws {
        var configuration = SimulatedPlatform.Configuration()
        if rejection == .outdatedPlatform {
            configuration.tcbComponents = [3, 3, 2, 2, 255, 255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        }
        let fixture = try await CoordinatorFixture.make(configuration: configuration, maxActivations: 1)
        let marble = try TestMarble()
        var enclave = fixture.enclave
        var type = "backend"
        var expected: CoordinatorError.Code = .attestation
        var request: ActivationRequest?
        switch rejection {
        case .otherSigner: enclave.signerID = [UInt8](repeating: 7, count: 32)
        case .olderVersion: enclave.securityVersion = 1
        case .debugEnclave: enclave.debug = true
        case .outdatedPlatform: break
        case .replayedQuote:
            request = try marble.request(
                fixture.platform, enclave: enclave, type: type, boundTo: try TestMarble().certificate)
            expected = .keyBinding
        case .unknownType:
            type = "frontend"
            expected = .unknownMarbleType
        case .limitReached:
            _ = try await fixture.coordinator.activate(
                marble.request(fixture.platform, enclave: enclave, type: type), peerCertificate: marble.certificate)
            expected = .activationLimit
        case .badCSR:
            var broken = try marble.request(fixture.platform, enclave: enclave, type: type)
            broken.csr[broken.csr.count - 3] ^= 0xFF
            request = broken
            expected = .invalidRequest
        case .badUUID:
            var broken = try marble.request(fixture.platform, enclave: enclave, type: type)
            broken.uuid = "not-a-uuid"
            request = broken
            expected = .invalidRequest
        case .csrForAnotherKey:
            // The quote binds the TLS key; a certificate for any other key would let the mesh
            // identity live outside the attested enclave.
            var swapped = try marble.request(fixture.platform, enclave: enclave, type: type)
            swapped.csr = try TestMarble().csr
            request = swapped
            expected = .keyBinding
        }
        let before = try await fixture.coordinator.activationCount("backend")
        let finalRequest = try request ?? marble.request(fixture.platform, enclave: enclave, type: type)
        await #expect {
            _ = try await fixture.coordinator.activate(finalRequest, peerCertificate: marble.certificate)
        } throws: { error in
            guard let error = error as? CoordinatorError else { return false }
            return error.code == expected
        }
        #expect(try await fixture.coordinator.activationCount("backend") == before)
    }

    @Test func nothingIsActivatedBeforeAManifestIsSet() async throws {
        let platform = try SimulatedPlatform.generate()
        let coordinator = try await Coordinator.start(
            verifier: platform.verifier, collateralProvider: platform.collateralProvider,
            store: MemoryStore(),
            sealer: EphemeralSealer())
        let marble = try TestMarble()
        let enclave = SimulatedEnclave(
            uniqueID: [UInt8](repeating: 1, count: 32), signerID: platform.defaultSigner.signerID)
        await #expect {
            _ = try await coordinator.activate(
                marble.request(platform, enclave: enclave, type: "backend"), peerCertificate: marble.certificate)
        } throws: { ($0 as? CoordinatorError)?.code == .wrongState }
        #expect(await coordinator.state == .acceptingManifest)
    }

    @Test func aManifestIsSetOnceAndAnInvalidOneChangesNothing() async throws {
        let platform = try SimulatedPlatform.generate()
        let coordinator = try await Coordinator.start(
            verifier: platform.verifier, collateralProvider: platform.collateralProvider,
            store: MemoryStore(),
            sealer: EphemeralSealer())
        await #expect {
            _ = try await coordinator.setManifest(Array(#"{"Packages": {}}"#.utf8))
        } throws: { ($0 as? CoordinatorError)?.code == .invalidManifest }
        #expect(await coordinator.state == .acceptingManifest)
        let manifest = CoordinatorFixture.manifest(signerID: platform.defaultSigner.signerID)
        let result = try await coordinator.setManifest(manifest)
        #expect(result.warnings.isEmpty)
        #expect(await coordinator.state == .acceptingMarbles)
        #expect(await coordinator.manifest?.fingerprint == ManifestDocument.fingerprint(of: manifest))
        await #expect {
            _ = try await coordinator.setManifest(manifest)
        } throws: { ($0 as? CoordinatorError)?.code == .wrongState }
    }
}
