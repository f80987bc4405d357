import CoordinatorTesting
import Foundation
import Testing

/// `marblerun quote verify`, `simulation init` and `package-info` through the real binary.
@Suite struct AttestationCLITests {
    static let dcap = TestData.url("dcap/dcap-qvl").path

    @Test func verifiesTheRealSGXQuote() async throws {
        let result = try await CLIRunner.run([
            "quote", "verify", "\(Self.dcap)/sgx_quote", "--collateral", "\(Self.dcap)/sgx_quote_collateral.json",
            "--at",
            "2025-07-01T00:00:00Z",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("TCB status:      ConfigurationAndSWHardeningNeeded"))
        #expect(result.stdout.contains("Advisories:      INTEL-SA-00289, INTEL-SA-00615"))
        #expect(
            result.stdout.contains("UniqueID:        33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb"))
    }

    @Test func rejectsWithTheReasonAndExitOne() async throws {
        let outdated = try await CLIRunner.run([
            "quote", "verify", "\(Self.dcap)/tdx_quote_outdated", "--collateral",
            "\(Self.dcap)/tdx_quote_outdated_collateral.json",
            "--at", "1774003274",
        ])
        #expect(outdated.status == 1)
        #expect(outdated.stderr.contains("rejected: no TCB level"))
        #expect(outdated.stderr.contains("[no-matching-tcb-level]"))

        let json = try await CLIRunner.run([
            "quote", "verify", "\(Self.dcap)/sgx_quote", "--collateral", "\(Self.dcap)/sgx_quote_collateral.json",
            "--json",
        ])
        #expect(json.status == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(object["verified"] as? Bool == false)
        #expect(
            ["crl-expired", "tcb-info-expired", "qe-identity-expired", "certificate-expired"].contains(
                object["code"] as? String))
    }

    @Test func intelSampleNeedsItsTestRoot() async throws {
        let sample = TestData.url("dcap/intel-qvl-sample").path
        let arguments = [
            "quote", "verify", "\(sample)/quote.dat", "--collateral", sample, "--at", "2020-01-01T00:00:00Z", "--json",
        ]
        let withTestRoot = try await CLIRunner.run(arguments + ["--root", "\(sample)/trustedRootCaCert.pem"])
        #expect(withTestRoot.status == 0, "\(withTestRoot.stdout)")
        #expect(withTestRoot.stdout.contains("\"tcbStatus\" : \"UpToDate\""))
        let withIntelRoot = try await CLIRunner.run(arguments)
        #expect(withIntelRoot.status == 1)
    }

    @Test func simulationInitAndPackageInfo() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sim-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let created = try await CLIRunner.run(["simulation", "init", directory])
        #expect(created.status == 0)
        #expect(created.stdout.contains("SIMULATION: created an INSECURE simulated SGX and TDX platform"))
        #expect(created.stdout.contains("TDX: \(directory)/collateral/tdx"))
        #expect(FileManager.default.fileExists(atPath: "\(directory)/collateral/tdx/tcbInfo.json"))
        let again = try await CLIRunner.run(["simulation", "init", directory])
        #expect(again.status == 1)
        #expect(again.stderr.contains("use --force"))

        let info = try await CLIRunner.run(["package-info", CLIRunner.binary.path, "--simulation", directory, "--json"])
        #expect(info.status == 0, "\(info.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any])
        let openssl = try await CLIRunner.run(
            ["dgst", "-sha256", "-r", CLIRunner.binary.path], executable: URL(fileURLWithPath: "/usr/bin/openssl"))
        #expect(object["UniqueID"] as? String == openssl.stdout.split(separator: " ").first.map(String.init))
        #expect((object["SignerID"] as? String)?.count == 64)

        let missing = try await CLIRunner.run(["package-info", "/nonexistent/binary"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("cannot read /nonexistent/binary"))
    }

    /// `package-info` on a real enclave's signature structure (an Occlum enclave's `.note.sgxmeta`)
    /// prints exactly its values; a copy with one signed byte changed is reported.
    @Test func packageInfoReadsARealEnclaveAndCatchesAChangedByte() async throws {
        let path = TestData.url("sigstruct/occlum-libos-sgxmeta.bin").path
        let info = try await CLIRunner.run(["package-info", path])
        #expect(info.status == 0, "\(info.stderr)")
        #expect(
            info.stdout == """
                UniqueID: 9d0dc627f893fc5471c8089d621a3da3652cf4e67eece9143ec5656406275a26
                SignerID: 83d719e77deaca1470f6baf62a4d774303c899db69020f9c70ee1dfc08c7ce9e
                ProductID: 0
                SecurityVersion: 0
                Debug: false
                Signature: valid (RSA-3072, the key whose SHA-256 is the SignerID)

                """, "\(info.stdout)")
        let json = try await CLIRunner.run(["package-info", path, "--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(object["UniqueID"] as? String == "9d0dc627f893fc5471c8089d621a3da3652cf4e67eece9143ec5656406275a26")
        #expect(object["ProductID"] as? Int == 0 && object["Debug"] as? Bool == false)

        var bytes = try TestData.bytes("sigstruct/occlum-libos-sgxmeta.bin")
        bytes[89 + 1026] ^= 0x01  // ISVSVN, inside the signed region
        let changed = FileManager.default.temporaryDirectory.appendingPathComponent("changed-\(UUID().uuidString)")
        try Data(bytes).write(to: changed)
        let refused = try await CLIRunner.run(["package-info", changed.path])
        #expect(refused.status == 1 && refused.stderr.contains("signature invalid"), "\(refused.stderr)")
        #expect(refused.stdout.contains("SecurityVersion: 1"), "the values are still shown: \(refused.stdout)")
    }
}
