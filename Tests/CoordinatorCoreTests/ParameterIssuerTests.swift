import Attestation
import CoordinatorTesting
import Foundation
import Manifest
import Store
import Testing
import X509

@testable import CoordinatorCore

/// A marble's activation makes only the secrets its parameters can reach (issue 15, scale): with
/// 1,000 per-marble secrets in the manifest, making all of them on every activation cost 100
/// certificates per activation. What a marble sees must not change.
@Suite struct ParameterIssuerTests {
    static func manifest(signerID: [UInt8]) -> [UInt8] {
        Array(
            """
            {
              "Packages": {"backend": {"SignerID": "\(Hex.encode(signerID))", "ProductID": 1, "SecurityVersion": 2}},
              "Marbles": {
                "reader": {"Package": "backend", "Parameters": {
                  "Env": {"OWN": "{{ hex .Secrets.own }}", "BEFORE": "{{ hex .Previous.Secrets.previousOnly }}",
                          "ROOT": "{{ pem .MarbleRun.RootCA.Cert }}"},
                  "Files": {"/raw": {"Data": "{{ hex .Secrets.untouched }}", "NoTemplates": true}}
                }, "TLS": ["web"]},
                "plain": {"Package": "backend", "Parameters": {"Env": {"A": "b"}}}
              },
              "Secrets": {
                "own": {"Type": "symmetric-key", "Size": 128},
                "previousOnly": {"Type": "symmetric-key", "Size": 256},
                "untouched": {"Type": "cert-ecdsa", "Size": 256, "Cert": {"Subject": {"CommonName": "untouched"}}},
                "webCert": {"Type": "cert-ecdsa", "Size": 256, "Cert": {"Subject": {"CommonName": "web"}}},
                "unused": {"Type": "cert-ecdsa", "Size": 256, "Cert": {"Subject": {"CommonName": "unused"}}}
              },
              "TLS": {"web": {"Incoming": [{"Port": "8443", "Cert": "webCert", "DisableClientAuth": true}, {"Port": "9443"}]}}
            }
            """.utf8)
    }

    static func parsed(_ bytes: [UInt8]) throws -> Manifest {
        try #require(ManifestDocument.parse(bytes).manifest)
    }

    @Test func onlyTheSecretsATemplateOrTLSTagNamesAreMade() throws {
        let manifest = try Self.parsed(Self.manifest(signerID: [UInt8](repeating: 1, count: 32)))
        let reader = try #require(manifest.marbles["reader"])
        #expect(
            try ParameterPlan(marble: reader, manifest: manifest).secretNames == ["own", "previousOnly", "webCert"])
        let plain = try #require(manifest.marbles["plain"])
        #expect(try ParameterPlan(marble: plain, manifest: manifest).secretNames.isEmpty)
    }

    @Test func aMarbleSeesTheSameValuesAsBefore() async throws {
        let platform = try SimulatedPlatform.generate()
        let coordinator = try await Coordinator.start(
            verifier: platform.verifier, collateralProvider: platform.collateralProvider, store: MemoryStore(),
            sealer: EphemeralSealer())
        let enclave = ActivationManifest.enclave(on: platform)
        _ = try await coordinator.setManifest(Self.manifest(signerID: enclave.signerID))
        let marble = try TestMarble()
        let uuid = UUID()
        let first = try await coordinator.activate(
            marble.request(platform, enclave: enclave, type: "reader", uuid: uuid), peerCertificate: marble.certificate)
        let again = try await coordinator.activate(
            marble.request(platform, enclave: enclave, type: "reader", uuid: uuid), peerCertificate: marble.certificate)

        #expect(first.env["OWN"]?.count == 32)
        // A previous value with no update behind it is the current one: made though only
        // `.Previous` names it, and the same on every activation of the UUID.
        #expect(first.env["BEFORE"]?.count == 64)
        #expect(first.env["BEFORE"] == again.env["BEFORE"])
        #expect(first.env["OWN"] == again.env["OWN"])
        #expect(first.files["/raw"] == Array("{{ hex .Secrets.untouched }}".utf8))
        // The TLS tag's certificate secret reaches MARBLE_TTLS_CONFIG.
        let ttls = try #require(first.env[PredefinedEnvironment.ttlsConfig])
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(ttls)) as? [String: [String: [String: [String: Any]]]])
        let incoming = try #require(object["tls"]?["Incoming"])
        let web = try #require(incoming["*:8443"]?["clicrt"] as? String)
        let webCertificate = try Certificate(derEncoded: try #require(pemBlocks(Array(web.utf8)).first))
        #expect(webCertificate.subject.description.contains("web"))
        let marbleDefault = try #require(incoming["*:9443"]?["clicrt"] as? String)
        #expect(marbleDefault != web)
    }

    @Test func aTemplateThatDoesNotParseIsRefusedWithItsPlace() throws {
        let value = Manifest.ParameterValue("{{ hex .Secrets.own ")
        let error = #expect(throws: CoordinatorError.self) {
            try ParameterPlan.parse(value, what: "environment variable X")
        }
        #expect(error.map { "\($0)" }?.contains("cannot render environment variable X: line 1") == true)
        #expect(
            try ParameterPlan.parse(Manifest.ParameterValue(data: [0x7B, 0x7B], noTemplates: true), what: "x") == nil)
    }
}
