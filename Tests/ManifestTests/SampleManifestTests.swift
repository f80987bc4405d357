import CoordinatorTesting
import Foundation
import Manifest
import Testing

/// The shared sample manifests behave as `../shared/testdata/README.md` says (in-process; the
/// CLI tests check the same through the binary).
@Suite struct SampleManifestTests {
    @Test func sampleManifestAsShippedIsRejectedNamingTheUserCertificates() throws {
        let document = ManifestDocument.parse(try TestData.bytes("manifests/sample-manifest.json"))
        #expect(!document.isValid)
        let paths = Set(document.errors.map(\.path))
        #expect(paths == ["Users.Alice.Certificate", "Users.Bob.Certificate", "Users.Admin.Certificate"])
        #expect(document.errors.allSatisfy { $0.code == .invalidCertificate })
    }

    @Test func sampleManifestWithRealCertificatesIsAccepted() throws {
        let document = ManifestDocument.parse(try SampleManifests.sampleWithCertificates())
        #expect(document.errors == [])
        #expect(document.isValid)
        #expect(document.manifest?.marbles.count == 3)
        #expect(document.manifest?.secrets.count == 8)
    }

    @Test(arguments: ["helloworld.json", "gramine-nginx.json", "occlum-hello.json"])
    func placeholderUniqueIDIsRejectedAsNotHex(name: String) throws {
        let document = ManifestDocument.parse(try TestData.bytes("manifests/\(name)"))
        #expect(!document.isValid)
        #expect(document.errors.count == 1)
        #expect(document.errors.first?.code == .notHex)
        #expect(document.errors.first?.path.hasSuffix(".UniqueID") == true)
    }

    @Test(arguments: ["helloworld.json", "occlum-hello.json"])
    func samplesWithHexUniqueIDAreAcceptedWithoutWarnings(name: String) throws {
        let document = ManifestDocument.parse(try SampleManifests.withUniqueID(name))
        #expect(document.problems == [])
    }

    @Test func gramineNginxWarnsAboutDNSNamesInsideSubject() throws {
        let bytes = try SampleManifests.withUniqueID("gramine-nginx.json")
        let document = ManifestDocument.parse(bytes)
        #expect(document.isValid)
        #expect(document.warnings.map(\.path) == ["Secrets.ServerCert.Cert.Subject.DNSNames"])
        #expect(document.warnings.first?.code == .unknownField)
        #expect(document.warnings.first?.message.contains("Secrets.ServerCert.Cert.DNSNames") == true)

        let strict = ManifestDocument.parse(bytes, options: ManifestOptions(strict: true))
        #expect(!strict.isValid)
        #expect(strict.errors.map(\.path) == ["Secrets.ServerCert.Cert.Subject.DNSNames"])
    }

    @Test func fingerprintIsSHA256OfTheExactBytes() throws {
        let bytes = try TestData.bytes("manifests/helloworld.json")
        // sha256 of the shared file, computed independently with `sha256sum`.
        #expect(ManifestDocument.parse(bytes).fingerprint == ManifestDocument.fingerprint(of: bytes))
        var changed = bytes
        changed.append(0x0A)
        #expect(ManifestDocument.fingerprint(of: changed) != ManifestDocument.fingerprint(of: bytes))
    }
}
