import Attestation
import Foundation
import CoordinatorTesting
import Testing

@Suite struct QuoteIssuerTests {
    /// A stand-in for Gramine's /dev/attestation: a folder whose `quote` file the test prepares.
    @Test func gramineIssuerWritesReportDataAndReadsTheQuote() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "attestation-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let realQuote = try TestData.bytes("dcap/dcap-qvl/sgx_quote")
        try Data(realQuote).write(to: directory.appendingPathComponent("quote"))
        #expect(
            FileManager.default.createFile(
                atPath: directory.appendingPathComponent("user_report_data").path, contents: nil))
        #expect(GramineQuoteIssuer.isAvailable(at: directory))

        let issuer = GramineQuoteIssuer(directory: directory)
        let quote = try issuer.issueQuote(reportData: [1, 2, 3])
        #expect(quote == realQuote)
        let written = try Data(contentsOf: directory.appendingPathComponent("user_report_data"))
        #expect(Array(written) == [1, 2, 3] + [UInt8](repeating: 0, count: 61))
    }

    @Test func gramineIssuerOutsideGramineFailsClearly() {
        let directory = URL(fileURLWithPath: "/nonexistent/attestation")
        #expect(!GramineQuoteIssuer.isAvailable(at: directory))
        #expect {
            _ = try GramineQuoteIssuer(directory: directory).issueQuote(reportData: [1])
        } throws: { ($0 as? AttestationError)?.message.contains("is this a Gramine enclave?") == true }
        #expect(throws: AttestationError.self) {
            _ = try GramineQuoteIssuer(directory: directory).issueQuote(reportData: [UInt8](repeating: 0, count: 65))
        }
    }

    @Test func simulatedIssuerProducesVerifiableQuotes() throws {
        let now = Date()
        let platform = try SimulatedPlatform.generate(now: now)
        let enclave = SimulatedEnclave(
            uniqueID: [UInt8](repeating: 7, count: 32), signerID: platform.defaultSigner.signerID)
        let bytes = try SimulatedQuoteIssuer(platform: platform, enclave: enclave).issueQuote(reportData: [42])
        let verified = try platform.verifier.verify(Quote(parsing: bytes), collateral: platform.collateral, at: now)
        #expect(verified.reportData.first == 42)
    }
}
