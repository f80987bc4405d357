import Attestation
import Foundation
import CoordinatorTesting
import SwiftASN1
import Testing
import X509

/// Every byte of every signed region, flipped one at a time, is rejected by the step that
/// guards it.
@Suite struct TamperingTests {
    typealias Code = AttestationError.Code

    struct Fixture {
        var quote: [UInt8]
        var bundle: [String: String]
        var time: Date
    }

    static func fixture(_ name: String) throws -> Fixture {
        let bundle = try #require(
            try JSONSerialization.jsonObject(with: Data(TestData.bytes("dcap/dcap-qvl/\(name)_collateral.json")))
                as? [String: String])
        let time =
            name == "tdx_quote_outdated"
            ? Date(timeIntervalSince1970: 1_774_003_274) : Date(timeIntervalSince1970: 1_751_328_000)
        return Fixture(quote: try TestData.bytes("dcap/dcap-qvl/\(name)"), bundle: bundle, time: time)
    }

    /// The code that rejected the evidence, or nil if it was accepted.
    static func verdict(_ quote: [UInt8], _ bundle: [String: String], at time: Date) -> Code? {
        do {
            let data = try JSONSerialization.data(withJSONObject: bundle)
            let collateral = try Collateral(dcapQVLBundle: Array(data))
            _ = try QuoteVerifier().verify(Quote(parsing: quote), collateral: collateral, at: time)
            return nil
        } catch let error as AttestationError {
            return error.code
        } catch {
            return Code(rawValue: "unexpected: \(error)")
        }
    }

    /// Flips bit 0 of each byte in `range` of the quote; every result must be rejected with one of `codes`.
    /// Yields between bytes: thousands of verifications must not hold one of the few threads
    /// the whole test run shares.
    static func flipQuote(_ fixture: Fixture, _ range: Range<Int>, _ region: String, _ codes: Set<Code>) async {
        var seen: [Code: Int] = [:]
        for index in range {
            await Task.yield()
            var quote = fixture.quote
            quote[index] ^= 0x01
            let code = verdict(quote, fixture.bundle, at: fixture.time)
            guard let code else {
                Issue.record("\(region): flipping byte \(index) was accepted")
                continue
            }
            seen[code, default: 0] += 1
            if !codes.contains(code) {
                Issue.record("\(region): byte \(index) rejected by \(code), expected one of \(codes)")
            }
        }
        print(
            "tampering: \(region) (\(range.count) bytes): \(seen.map { "\($0.key) \($0.value)" }.sorted().joined(separator: ", "))"
        )
    }

    @Test func sgxQuoteRegions() async throws {
        let fixture = try Self.fixture("sgx_quote")
        let authLength = Int(fixture.quote[1012]) | Int(fixture.quote[1013]) << 8
        await Self.flipQuote(fixture, 0..<48, "SGX header", [.unsupportedQuote, .malformedQuote, .isvSignature])
        await Self.flipQuote(fixture, 48..<432, "SGX enclave report", [.isvSignature])
        await Self.flipQuote(fixture, 436..<500, "quote signature", [.isvSignature])
        await Self.flipQuote(fixture, 500..<564, "attestation key", [.qeBinding])
        await Self.flipQuote(fixture, 564..<948, "QE report", [.qeReportSignature])
        await Self.flipQuote(fixture, 948..<1012, "QE report signature", [.qeReportSignature])
        await Self.flipQuote(fixture, 1014..<1014 + authLength, "QE authentication data", [.qeBinding])
    }

    @Test func tdxQuoteRegions() async throws {
        let fixture = try Self.fixture("tdx_quote")
        // v4: header 48, TD report 584, length 4, signature 64, key 64, type 2, size 4, QE report 384, signature 64.
        await Self.flipQuote(fixture, 0..<48, "TDX header", [.unsupportedQuote, .malformedQuote, .isvSignature])
        await Self.flipQuote(fixture, 48..<632, "TD report", [.isvSignature])
        await Self.flipQuote(fixture, 636..<700, "TDX quote signature", [.isvSignature])
        await Self.flipQuote(fixture, 700..<764, "TDX attestation key", [.qeBinding])
        await Self.flipQuote(fixture, 770..<1154, "TDX QE report", [.qeReportSignature])
        await Self.flipQuote(fixture, 1154..<1218, "TDX QE report signature", [.qeReportSignature])
    }

    static func flipBundleText(_ fixture: Fixture, _ key: String, _ codes: Set<Code>) async {
        let original = Array(fixture.bundle[key]!.utf8)
        var seen: [Code: Int] = [:]
        for index in original.indices {
            await Task.yield()
            var text = original
            text[index] ^= 0x01
            var bundle = fixture.bundle
            bundle[key] = String(decoding: text, as: UTF8.self)
            guard let code = verdict(fixture.quote, bundle, at: fixture.time) else {
                Issue.record("\(key): flipping byte \(index) was accepted")
                continue
            }
            seen[code, default: 0] += 1
            if !codes.contains(code) {
                Issue.record("\(key): byte \(index) rejected by \(code), expected one of \(codes)")
            }
        }
        print(
            "tampering: \(key) (\(original.count) bytes): \(seen.map { "\($0.key) \($0.value)" }.sorted().joined(separator: ", "))"
        )
    }

    @Test func signedCollateralDocuments() async throws {
        let fixture = try Self.fixture("sgx_quote")
        await Self.flipBundleText(fixture, "tcb_info", [.tcbInfoSignature, .malformedCollateral])
        await Self.flipBundleText(fixture, "tcb_info_signature", [.tcbInfoSignature, .malformedCollateral])
        await Self.flipBundleText(fixture, "qe_identity", [.qeIdentitySignature, .malformedCollateral])
        await Self.flipBundleText(fixture, "qe_identity_signature", [.qeIdentitySignature, .malformedCollateral])
    }

    /// CRLs are hex DER in the bundle: flip each DER byte.
    @Test func certificateRevocationLists() throws {
        let fixture = try Self.fixture("sgx_quote")
        for key in ["root_ca_crl", "pck_crl"] {
            let der = try #require(hexBytes(fixture.bundle[key]!))
            var seen: [Code: Int] = [:]
            for index in der.indices {
                var flipped = der
                flipped[index] ^= 0x01
                var bundle = fixture.bundle
                bundle[key] = hex(flipped)
                guard let code = Self.verdict(fixture.quote, bundle, at: fixture.time) else {
                    Issue.record("\(key): flipping DER byte \(index) was accepted")
                    continue
                }
                seen[code, default: 0] += 1
                #expect([Code.malformedCRL, .crlSignature].contains(code), "\(key) byte \(index): \(code)")
            }
            print(
                "tampering: \(key) (\(der.count) bytes): \(seen.map { "\($0.key) \($0.value)" }.sorted().joined(separator: ", "))"
            )
        }
    }

    /// Each DER byte of each certificate of the quote's PCK chain, re-encoded into the quote.
    @Test func pckCertificateChain() throws {
        let fixture = try Self.fixture("sgx_quote")
        let quote = try Quote(parsing: fixture.quote)
        let chain = try #require(try quote.certificationData.pemChain())
        let prefix = Array(fixture.quote[0..<(fixture.quote.count - quote.certificationData.data.count)])
        let ders = try chain.map { try $0.serializeAsPEM().derBytes }
        var seen: [Code: Int] = [:]
        for (position, der) in ders.enumerated() {
            for index in der.indices {
                var mutated = ders
                mutated[position][index] ^= 0x01
                let pem = mutated.map { PEMDocument(type: "CERTIFICATE", derBytes: $0).pemString + "\n" }.joined()
                let rebuilt = Self.replacingCertificationData(
                    prefix: prefix, with: Array(pem.utf8), in: fixture.quote, quote: quote)
                guard let code = Self.verdict(rebuilt, fixture.bundle, at: fixture.time) else {
                    Issue.record("PCK chain certificate \(position): flipping DER byte \(index) was accepted")
                    continue
                }
                seen[code, default: 0] += 1
                #expect(
                    [
                        Code.malformedCertificate, .certificateChain, .untrustedRoot, .pckExtension, .crlSignature,
                        .qeReportSignature,
                    ]
                    .contains(code),
                    "certificate \(position) byte \(index): \(code)")
            }
        }
        print(
            "tampering: PCK chain (\(ders.map(\.count).reduce(0, +)) DER bytes): \(seen.map { "\($0.key) \($0.value)" }.sorted().joined(separator: ", "))"
        )
    }

    /// Puts new certification data into a v3 quote, fixing the two lengths that cover it.
    static func replacingCertificationData(prefix: [UInt8], with data: [UInt8], in original: [UInt8], quote: Quote)
        -> [UInt8]
    {
        var bytes = prefix
        let oldSize = quote.certificationData.data.count
        let sizeOffset = bytes.count - 4
        let delta = data.count - oldSize
        let newSize = UInt32(data.count)
        for shift in 0..<4 { bytes[sizeOffset + shift] = UInt8(truncatingIfNeeded: newSize >> (8 * UInt32(shift))) }
        let signatureLength = UInt32(Int(original.littleEndianU32(432)) + delta)
        for shift in 0..<4 { bytes[432 + shift] = UInt8(truncatingIfNeeded: signatureLength >> (8 * UInt32(shift))) }
        return bytes + data
    }
}

func hexBytes(_ text: String) -> [UInt8]? {
    var bytes: [UInt8] = []
    var index = text.startIndex
    while index < text.endIndex {
        let next = text.index(index, offsetBy: 2)
        guard let byte = UInt8(text[index..<next], radix: 16) else { return nil }
        bytes.append(byte)
        index = next
    }
    return bytes
}

extension Array where Element == UInt8 {
    func littleEndianU32(_ offset: Int) -> UInt32 {
        self[offset..<offset + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }
}
