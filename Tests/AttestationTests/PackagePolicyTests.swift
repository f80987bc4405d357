import Attestation
import Crypto
import Foundation
import CoordinatorTesting
import Testing

@Suite struct PackagePolicyTests {
    static let signer = Array(SHA256.hash(data: Array("signer".utf8)))
    static let unique = Array(SHA256.hash(data: Array("code".utf8)))

    static func quote(
        debug: Bool = false, svn: UInt16 = 3, product: UInt16 = 7, status: TCBStatus = .upToDate,
        advisories: [String] = []
    ) -> VerifiedQuote {
        VerifiedQuote(
            tee: .sgx, uniqueID: unique, signerID: signer, productID: product, securityVersion: svn, debug: debug,
            reportData: [], tcbStatus: status, advisoryIDs: advisories, platformTCBStatus: status,
            qeTCBStatus: .upToDate,
            fmspc: [], td: nil)
    }

    static let signerPolicy = PackagePolicy(signerID: signer, productID: 7, securityVersion: 3)

    static let cases: [(String, PackagePolicy, VerifiedQuote, String?)] = [
        ("matching UniqueID", PackagePolicy(uniqueID: unique), quote(), nil),
        ("other UniqueID", PackagePolicy(uniqueID: signer), quote(), "UniqueID"),
        ("matching signer", signerPolicy, quote(), nil),
        ("newer version", signerPolicy, quote(svn: 9), nil),
        ("older version", signerPolicy, quote(svn: 2), "SecurityVersion 2 is below the package's 3"),
        ("other product", signerPolicy, quote(product: 8), "ProductID 8"),
        ("other signer", PackagePolicy(signerID: unique, productID: 7, securityVersion: 3), quote(), "SignerID"),
        ("debug enclave, production package", signerPolicy, quote(debug: true), "debug mode"),
        ("debug enclave, debug package", PackagePolicy(debug: true, uniqueID: unique), quote(debug: true), nil),
        (
            "out of date", signerPolicy, quote(status: .outOfDate, advisories: ["INTEL-SA-00615"]),
            "TCB status OutOfDate"
        ),
        (
            "SW hardening by default", signerPolicy, quote(status: .swHardeningNeeded, advisories: ["INTEL-SA-00615"]),
            nil
        ),
        (
            "SW hardening not listed",
            PackagePolicy(
                signerID: signer, productID: 7, securityVersion: 3, acceptedTCBStatuses: [.configurationNeeded]),
            quote(status: .swHardeningNeeded), "TCB status SWHardeningNeeded"
        ),
        (
            "advisory not accepted",
            PackagePolicy(signerID: signer, productID: 7, securityVersion: 3, acceptedAdvisories: ["INTEL-SA-00334"]),
            quote(status: .swHardeningNeeded, advisories: ["INTEL-SA-00334", "INTEL-SA-00615"]), "INTEL-SA-00615"
        ),
        (
            "advisories accepted case-insensitively",
            PackagePolicy(signerID: signer, productID: 7, securityVersion: 3, acceptedAdvisories: ["intel-sa-00615"]),
            quote(status: .swHardeningNeeded, advisories: ["INTEL-SA-00615"]), nil
        ),
        ("no identity", PackagePolicy(), quote(), "no UniqueID or SignerID"),
    ]

    @Test(arguments: cases)
    func decides(name: String, policy: PackagePolicy, quote: VerifiedQuote, rejection: String?) {
        switch policy.evaluate(quote) {
        case .accepted:
            #expect(rejection == nil, "\(name) was accepted")
        case .rejected(let reason):
            #expect(rejection != nil && reason.contains(rejection!), "\(name): \(reason)")
        }
    }
}

@Suite struct SimulatedPlatformFileTests {
    @Test func writesKeysPrivatelyAndLoadsBack() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sim-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let now = Date()
        let platform = try SimulatedPlatform.generate(now: now)
        try platform.write(to: directory)
        for key in ["root-ca.key", "pck-ca.key", "pck.key", "tcb-signing.key", "attestation.key", "enclave-signer.key"]
        {
            let attributes = try FileManager.default.attributesOfItem(
                atPath: directory.appendingPathComponent(key).path)
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600, "\(key)")
        }
        let loaded = try SimulatedPlatform.load(from: directory)
        #expect(loaded.rootCertificate == platform.rootCertificate)
        let enclave = SimulatedEnclave(
            uniqueID: [UInt8](repeating: 1, count: 32), signerID: loaded.defaultSigner.signerID)
        let quote = try Quote(parsing: loaded.quote(reportData: [9], enclave: enclave))
        // The loaded collateral came through the Intel PCS file layout.
        let verified = try loaded.verifier.verify(quote, collateral: loaded.collateral, at: now)
        #expect(verified.tcbStatus == .upToDate)
        #expect(verified.signerID == platform.defaultSigner.signerID)
    }

    @Test func loadingAMissingDirectorySaysWhatToRun() {
        #expect {
            _ = try SimulatedPlatform.load(from: URL(fileURLWithPath: "/nonexistent/sim"))
        } throws: { ($0 as? AttestationError)?.message.contains("marblerun simulation init") == true }
    }

    @Test func executablesAreMeasuredByTheirBytes() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("exe-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: file) }
        let bytes = [UInt8](repeating: 0x5A, count: 3 << 20)
        try Data(bytes).write(to: file)
        #expect(try SimulatedEnclave.uniqueID(of: file) == Array(SHA256.hash(data: bytes)))
    }
}

@Suite struct EndToEndPolicyTests {
    /// A debug build of the right enclave verifies (its quote is genuine) and is then refused by
    /// a production package; a Debug package accepts it.
    @Test func debugEnclaveUnderAProductionPackageIsRefused() throws {
        let now = Date()
        let platform = try SimulatedPlatform.generate(now: now)
        var signer = platform.defaultSigner
        signer.debug = true
        signer.productID = 4
        signer.securityVersion = 2
        let executable = FileManager.default.temporaryDirectory.appendingPathComponent("marble-\(UUID().uuidString)")
        try Data("#!/bin/sh\necho hello\n".utf8).write(to: executable)
        defer { try? FileManager.default.removeItem(at: executable) }
        let enclave = try SimulatedEnclave.measuring(executable: executable, signer: signer)
        let verified = try platform.verifier.verify(
            Quote(parsing: platform.quote(reportData: [7], enclave: enclave)), collateral: platform.collateral, at: now)
        #expect(verified.debug)

        let production = PackagePolicy(signerID: signer.signerID, productID: 4, securityVersion: 2)
        #expect {
            try production.check(verified)
        } throws: { ($0 as? AttestationError)?.message.contains("debug mode") == true }
        var debugPackage = production
        debugPackage.debug = true
        #expect(throws: Never.self) { try debugPackage.check(verified) }

        let newer = PackagePolicy(debug: true, signerID: signer.signerID, productID: 4, securityVersion: 3)
        #expect {
            try newer.check(verified)
        } throws: { ($0 as? AttestationError)?.message.contains("SecurityVersion 2 is below the package's 3") == true }
    }

    @Test func fileProviderReadsBundlesAndFolders() async throws {
        let quote = try Quote(parsing: TestData.bytes("dcap/dcap-qvl/sgx_quote"))
        let bundle = FileCollateralProvider(location: TestData.url("dcap/dcap-qvl/sgx_quote_collateral.json"))
        #expect(try await bundle.collateral(for: quote).tcbInfo.document.fmspc == [0x00, 0xA0, 0x67, 0x11, 0x00, 0x00])
        let folder = FileCollateralProvider(location: TestData.url("dcap/intel-qvl-sample"))
        #expect(try await folder.collateral(for: quote).tcbInfo.document.version == 2)
        await #expect(throws: AttestationError.self) {
            _ = try await FileCollateralProvider(location: URL(fileURLWithPath: "/nonexistent")).collateral(for: quote)
        }
    }
}
