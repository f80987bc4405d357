import Foundation
import CoordinatorTesting
import Testing

/// `marblerun manifest check|signature` through the real binary, on the shared sample manifests.
@Suite struct ManifestCheckCLITests {
    @Test func sampleManifestAsShippedFailsNamingUserCertificates() async throws {
        let result = try await CLIRunner.run(["manifest", "check", TestData.url("manifests/sample-manifest.json").path])
        #expect(result.status == 1)
        #expect(result.stdout.contains("error: Users.Alice.Certificate:"))
        #expect(result.stdout.contains("error: Users.Bob.Certificate:"))
        #expect(result.stdout.contains("error: Users.Admin.Certificate:"))
        #expect(result.stdout.contains("invalid: 3 errors"))
    }

    @Test func sampleManifestWithCertificatesPasses() async throws {
        let file = try CLIRunner.temporaryFile(try SampleManifests.sampleWithCertificates(), name: "sample.json")
        let result = try await CLIRunner.run(["manifest", "check", file])
        #expect(result.status == 0, "\(result.stdout)")
        #expect(result.stdout.contains("valid (2 packages, 3 marbles, 8 secrets, 3 users"))
        #expect(!result.stdout.contains("error:"))
    }

    @Test(arguments: ["helloworld.json", "gramine-nginx.json", "occlum-hello.json"])
    func placeholdersFailAndHexPasses(name: String) async throws {
        let shipped = try await CLIRunner.run(["manifest", "check", TestData.url("manifests/\(name)").path])
        #expect(shipped.status == 1)
        #expect(shipped.stdout.contains(".UniqueID: expected 64 hex digits"))

        let file = try CLIRunner.temporaryFile(try SampleManifests.withUniqueID(name), name: name)
        let fixed = try await CLIRunner.run(["manifest", "check", file])
        #expect(fixed.status == 0, "\(fixed.stdout)")
        #expect(fixed.stdout.contains("\(file): valid"))
    }

    @Test func gramineNginxWarningAndStrictError() async throws {
        let file = try CLIRunner.temporaryFile(
            try SampleManifests.withUniqueID("gramine-nginx.json"), name: "nginx.json")
        let lenient = try await CLIRunner.run(["manifest", "check", file])
        #expect(lenient.status == 0)
        #expect(lenient.stdout.contains("warning: Secrets.ServerCert.Cert.Subject.DNSNames: unknown field"))
        #expect(lenient.stdout.contains("1 warning"))

        let strict = try await CLIRunner.run(["manifest", "check", "--strict", file])
        #expect(strict.status == 1)
        #expect(strict.stdout.contains("error: Secrets.ServerCert.Cert.Subject.DNSNames: unknown field"))
    }

    @Test func jsonOutputIsMachineReadable() async throws {
        let result = try await CLIRunner.run([
            "manifest", "check", "--json", TestData.url("manifests/sample-manifest.json").path,
        ])
        #expect(result.status == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(object["valid"] as? Bool == false)
        let errors = try #require(object["errors"] as? [[String: String]])
        #expect(
            Set(errors.compactMap { $0["path"] }) == [
                "Users.Alice.Certificate", "Users.Bob.Certificate", "Users.Admin.Certificate",
            ])
        #expect(errors.allSatisfy { $0["code"] == "invalid-certificate" })
        let warnings = try #require(object["warnings"] as? [[String: String]])
        #expect(warnings.count == 3)
    }

    @Test func signatureMatchesOpenSSLDigestOfTheFile() async throws {
        let path = TestData.url("manifests/sample-manifest.json").path
        let ours = try await CLIRunner.run(["manifest", "signature", path])
        #expect(ours.status == 0)
        let openssl = try await CLIRunner.run(
            ["dgst", "-sha256", "-r", path], executable: URL(fileURLWithPath: "/usr/bin/openssl"))
        let expected = try #require(openssl.stdout.split(separator: " ").first)
        #expect(ours.stdout == "\(expected)\n")
    }

    @Test func yamlManifestIsCheckedAndHashedAsItsJSON() async throws {
        let yaml = """
            Packages:
              world:
                Debug: true
                UniqueID: "\(String(repeating: "0f", count: 32))"
            Marbles:
              hello:
                Package: world
                MaxActivation: 2
                Parameters:
                  Argv: [foo, bar]
            """
        let file = try CLIRunner.temporaryFile(Array(yaml.utf8), name: "manifest.yaml")
        let result = try await CLIRunner.run(["manifest", "check", file])
        #expect(result.status == 0, "\(result.stdout)")
        #expect(result.stdout.contains("warning: Marbles.hello.MaxActivation: unknown field"))
        #expect(result.stdout.contains("Did you mean \"MaxActivations\"?"))

        let json =
            #"{"Marbles":{"hello":{"MaxActivation":2,"Package":"world","Parameters":{"Argv":["foo","bar"]}}},"Packages":{"world":{"Debug":true,"UniqueID":"\#(String(repeating: "0f", count: 32))"}}}"#
        let jsonFile = try CLIRunner.temporaryFile(Array(json.utf8), name: "manifest.json")
        let yamlHash = try await CLIRunner.run(["manifest", "signature", file])
        let jsonHash = try await CLIRunner.run(["manifest", "signature", jsonFile])
        #expect(yamlHash.status == 0)
        #expect(yamlHash.stdout == jsonHash.stdout)
    }

    @Test func unreadableInputGetsAClearErrorAndExitOne() async throws {
        let missing = try await CLIRunner.run(["manifest", "check", "/nonexistent/manifest.json"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("cannot read /nonexistent/manifest.json: no such file"))

        let directory = try await CLIRunner.run(["manifest", "check", FileManager.default.temporaryDirectory.path])
        #expect(directory.status == 1)
        #expect(directory.stderr.contains("it is a directory"))

        let big = try CLIRunner.temporaryFile([UInt8](repeating: 0x20, count: (8 << 20) + 1), name: "big.json")
        let tooLarge = try await CLIRunner.run(["manifest", "check", big])
        #expect(tooLarge.status == 1)
        #expect(tooLarge.stderr.contains("a manifest may have at most 8388608"))

        let binary = try CLIRunner.temporaryFile([0xFF, 0xFE, 0x00, 0x01], name: "binary")
        let garbage = try await CLIRunner.run(["manifest", "check", binary])
        #expect(garbage.status == 1)
        #expect(garbage.stdout.contains("error: not valid JSON or YAML"))

        let usage = try await CLIRunner.run(["manifest", "check"])
        #expect(usage.status != 0)
        #expect(usage.stderr.contains("Missing expected argument '<file>'"))
    }
}
