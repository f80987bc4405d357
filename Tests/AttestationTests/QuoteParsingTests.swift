import Attestation
import Foundation
import CoordinatorTesting
import Testing

@Suite struct QuoteParsingTests {
    @Test func parsesTheRealSGXQuote() throws {
        let quote = try Quote(parsing: TestData.bytes("dcap/dcap-qvl/sgx_quote"))
        #expect(quote.version == 3)
        #expect(!quote.isTDX)
        guard case .sgx(let report) = quote.body else {
            Issue.record("not SGX")
            return
        }
        #expect(hex(report.mrEnclave) == "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb")
        #expect(hex(report.mrSigner) == "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6")
        #expect(report.isvProdID == 0 && report.isvSVN == 0 && !report.isDebug)
        #expect(hex(report.attributes) == "0500000000000000e700000000000000")
        #expect(Array(report.reportData.prefix(13)) == Array("Hello, world!".utf8))
        #expect(report.reportData.dropFirst(13).allSatisfy { $0 == 0 })
        #expect(quote.certificationData.type == 5)
        #expect(try quote.certificationData.pemChain()?.count == 3)
        #expect(quote.signedRegion.count == 432)
    }

    @Test(arguments: ["tdx_quote", "tdx_quote_outdated"])
    func parsesTheRealTDXQuotes(name: String) throws {
        let quote = try Quote(parsing: TestData.bytes("dcap/dcap-qvl/\(name)"))
        #expect(quote.isTDX)
        guard case .tdx(let report) = quote.body else {
            Issue.record("not TDX")
            return
        }
        #expect(quote.version == (name == "tdx_quote" ? 4 : 5))
        #expect(report.isVersion15 == (name == "tdx_quote_outdated"))
        #expect(try quote.certificationData.pemChain()?.count == 3)
    }

    @Test func parsesIntelsSampleWithPPIDCertificationData() throws {
        let quote = try Quote(parsing: TestData.bytes("dcap/intel-qvl-sample/quote.dat"))
        #expect(quote.version == 3)
        #expect(quote.certificationData.type != 5)
        #expect(try quote.certificationData.pemChain() == nil)
        #expect(quote.qeAuthData.isEmpty)
    }

    @Test func unwrapsTheOpenEnclaveHeader() throws {
        let raw = try TestData.bytes("dcap/dcap-qvl/sgx_quote")
        var wrapped: [UInt8] = [1, 0, 0, 0, 2, 0, 0, 0]
        wrapped += withUnsafeBytes(of: UInt64(raw.count).littleEndian) { Array($0) }
        let quote = try Quote(parsing: wrapped + raw)
        #expect(quote.wasOpenEnclaveWrapped)
        #expect(quote.signedRegion == (try Quote(parsing: raw)).signedRegion)
    }

    @Test func everyTruncationIsATypedError() throws {
        for name in ["sgx_quote", "tdx_quote", "tdx_quote_outdated"] {
            let raw = try TestData.bytes("dcap/dcap-qvl/\(name)")
            let quote = try Quote(parsing: raw)
            // The end of the certification data: anything shorter cuts a declared field.
            let needed = raw.count - raw.reversed().prefix { $0 == 0 }.count
            for length in stride(from: 0, to: needed, by: 1) {
                #expect(throws: AttestationError.self, "\(name) cut to \(length) bytes") {
                    _ = try Quote(parsing: Array(raw.prefix(length)))
                }
            }
            _ = quote
        }
    }

    @Test func toleratesTrailingPadding() throws {
        let raw = try TestData.bytes("dcap/dcap-qvl/sgx_quote")
        #expect(try Quote(parsing: raw + [UInt8](repeating: 0, count: 100)).signedRegion.count == 432)
    }

    @Test func rejectsUnknownVersionsAndLengths() throws {
        var raw = try TestData.bytes("dcap/dcap-qvl/sgx_quote")
        raw[0] = 9
        #expect {
            _ = try Quote(parsing: raw)
        } throws: { ($0 as? AttestationError)?.code == .unsupportedQuote }
        raw[0] = 3
        raw[432] = 0xFF
        raw[433] = 0xFF  // signature data length far beyond the quote
        #expect {
            _ = try Quote(parsing: raw)
        } throws: { ($0 as? AttestationError)?.code == .truncated }
    }
}

func hex(_ bytes: [UInt8]) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}

@Suite struct CollateralTimeTests {
    @Test(arguments: [
        "2025-06-19T10:56:11Z", "2000-02-29T00:00:00Z", "1999-12-31T23:59:59Z", "2049-12-31T23:59:59Z",
        "2024-03-01T12:00:00.250Z",
    ])
    func matchesFoundationsParser(text: String) throws {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions =
            text.contains(".") ? [.withInternetDateTime, .withFractionalSeconds] : [.withInternetDateTime]
        let expected = try #require(formatter.date(from: text))
        #expect(CollateralTimeProbe.parse(text) == expected)
    }

    @Test(arguments: [
        "2025-13-01T00:00:00Z", "2025-06-19 10:56:11Z", "2025-06-19T10:56:11", "yesterday", "2025-06-19T10:56:11+02:00",
    ])
    func refusesOtherForms(text: String) {
        #expect(CollateralTimeProbe.parse(text) == nil)
    }
}

@Suite struct CertificationDataToleranceTests {
    /// Quotes from some stacks carry PEM with other line lengths, CRLF and NUL padding.
    @Test func pemChainWithOtherLineLengthsAndTrailingNULsVerifies() throws {
        let raw = try TestData.bytes("dcap/dcap-qvl/sgx_quote")
        let quote = try Quote(parsing: raw)
        let chain = try #require(try quote.certificationData.pemChain())
        var pem = ""
        for certificate in chain {
            let base64 = Data(try certificate.serializeAsPEM().derBytes).base64EncodedString(options: [
                .lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed,
            ])
            pem += "-----BEGIN CERTIFICATE-----\r\n\(base64)\r\n-----END CERTIFICATE-----\r\n"
        }
        let data = Array(pem.utf8) + [0, 0, 0]
        let prefix = Array(raw[0..<(raw.count - quote.certificationData.data.count)])
        let rebuilt = TamperingTests.replacingCertificationData(prefix: prefix, with: data, in: raw, quote: quote)
        let collateral = try Collateral(dcapQVLBundle: TestData.bytes("dcap/dcap-qvl/sgx_quote_collateral.json"))
        let verified = try QuoteVerifier().verify(
            Quote(parsing: rebuilt), collateral: collateral, at: Date(timeIntervalSince1970: 1_751_328_000))
        #expect(verified.tcbStatus == .configurationAndSWHardeningNeeded)
    }

    /// Intel's QE sends 32 bytes of authentication data, but the format allows any size.
    @Test(arguments: [0, 1, 16, 64, 300])
    func qeAuthenticationDataOfAnySizeVerifies(size: Int) throws {
        let now = Date()
        let platform = try SimulatedPlatform.generate(now: now)
        let enclave = SimulatedEnclave(
            uniqueID: [UInt8](repeating: 2, count: 32), signerID: platform.defaultSigner.signerID)
        let quote = try Quote(parsing: platform.quote(reportData: [1], enclave: enclave, qeAuthDataSize: size))
        #expect(quote.qeAuthData.count == size)
        #expect(try platform.verifier.verify(quote, collateral: platform.collateral, at: now).tcbStatus == .upToDate)
    }
}
