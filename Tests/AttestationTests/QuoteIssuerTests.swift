import Attestation
import CoordinatorTesting
import Foundation
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

    static func tsmDirectory() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("tsm-\(UUID().uuidString)")
    }

    /// configfs-tsm played by ``FakeTSM``: the report data goes to `inblob` padded to 64 bytes,
    /// the quote comes from `outblob`, and `generation` grew by one.
    @Test func tsmIssuerWritesReportDataAndReadsTheQuote() throws {
        let directory = Self.tsmDirectory()
        let realQuote = try TestData.bytes("dcap/dcap-qvl/tdx_quote")
        let tsm = try FakeTSM(directory: directory) { _ in realQuote }
        defer { tsm.stop() }
        #expect(TSMQuoteIssuer.isAvailable(at: directory))
        let issuer = TSMQuoteIssuer(directory: directory)
        #expect(try issuer.issueQuote(reportData: [1, 2, 3]) == realQuote)
        #expect(try issuer.issueQuote(reportData: [4]) == realQuote)
        #expect(
            tsm.reportData == [[1, 2, 3] + [UInt8](repeating: 0, count: 61), [4] + [UInt8](repeating: 0, count: 63)])
        #expect(try Quote(parsing: realQuote).isTDX)
    }

    @Test func tsmIssuerRefusesAnotherProviderAnInterleavedWriterAndNoInterface() throws {
        let other = try FakeTSM(directory: Self.tsmDirectory(), provider: "sev_guest") { _ in [1] }
        defer { other.stop() }
        #expect {
            _ = try TSMQuoteIssuer(directory: other.directory).issueQuote(reportData: [1])
        } throws: { ($0 as? AttestationError)?.message.contains("not a TDX guest") == true }

        let raced = try FakeTSM(directory: Self.tsmDirectory(), generationStep: 2) { _ in [1, 2, 3] }
        defer { raced.stop() }
        #expect {
            _ = try TSMQuoteIssuer(directory: raced.directory).issueQuote(reportData: [1])
        } throws: { ($0 as? AttestationError)?.message.contains("another writer") == true }

        let none = URL(fileURLWithPath: "/nonexistent/tsm")
        #expect(!TSMQuoteIssuer.isAvailable(at: none))
        #expect {
            _ = try TSMQuoteIssuer(directory: none).issueQuote(reportData: [1])
        } throws: { ($0 as? AttestationError)?.message.contains("TDX guest") == true }
        #expect(throws: AttestationError.self) {
            _ = try TSMQuoteIssuer(directory: none).issueQuote(reportData: [UInt8](repeating: 0, count: 65))
        }
    }
}
