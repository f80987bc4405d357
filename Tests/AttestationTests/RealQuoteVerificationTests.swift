import Attestation
import Foundation
import CoordinatorTesting
import Testing
import X509

/// The real Intel quotes and collateral in `../shared/testdata/dcap` give exactly the verdicts
/// their README states.
@Suite struct RealQuoteVerificationTests {
    static func load(_ name: String) throws -> (Quote, Collateral) {
        let quote = try Quote(parsing: TestData.bytes("dcap/dcap-qvl/\(name)"))
        let collateral = try Collateral(dcapQVLBundle: TestData.bytes("dcap/dcap-qvl/\(name)_collateral.json"))
        return (quote, collateral)
    }

    static let july2025 = Date(timeIntervalSince1970: 1_751_328_000)

    @Test func intelRootIsPinned() throws {
        let der = try TestData.bytes("dcap/intel-sgx-root-ca.der")
        #expect(try Certificate(derEncoded: der) == TrustAnchors.intelSGXRootCA)
    }

    @Test func sgxQuoteNeedsConfigurationAndSWHardening() throws {
        let (quote, collateral) = try Self.load("sgx_quote")
        let verified = try QuoteVerifier().verify(quote, collateral: collateral, at: Self.july2025)
        #expect(verified.tcbStatus == .configurationAndSWHardeningNeeded)
        #expect(verified.advisoryIDs == ["INTEL-SA-00289", "INTEL-SA-00615"])
        #expect(verified.qeTCBStatus == .upToDate)
        #expect(verified.tee == .sgx)
        #expect(hex(verified.uniqueID) == "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb")
        #expect(hex(verified.signerID) == "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6")
        #expect(verified.productID == 0 && verified.securityVersion == 0 && !verified.debug)
        #expect(Array(verified.reportData.prefix(13)) == Array("Hello, world!".utf8))
    }

    @Test func tdxQuoteIsUpToDate() throws {
        let (quote, collateral) = try Self.load("tdx_quote")
        let verified = try QuoteVerifier().verify(quote, collateral: collateral, at: Self.july2025)
        #expect(verified.tcbStatus == .upToDate)
        #expect(verified.advisoryIDs == [])
        #expect(verified.tee == .tdx)
        #expect(verified.td?.rtmrs.count == 4)
    }

    @Test func outdatedTDXQuoteHasNoMatchingTCBLevel() throws {
        let (quote, collateral) = try Self.load("tdx_quote_outdated")
        #expect {
            _ = try QuoteVerifier().verify(
                quote, collateral: collateral, at: Date(timeIntervalSince1970: 1_774_003_274))
        } throws: { ($0 as? AttestationError)?.code == .noMatchingTCBLevel }
    }

    @Test func expiredCollateralIsRejected() throws {
        let (quote, collateral) = try Self.load("sgx_quote")
        let later = Date(timeIntervalSince1970: 1_751_328_000 + 40 * 86_400)
        #expect {
            _ = try QuoteVerifier().verify(quote, collateral: collateral, at: later)
        } throws: { [.crlExpired, .tcbInfoExpired, .qeIdentityExpired].contains(($0 as? AttestationError)?.code) }
    }

    @Test func intelSampleVerifiesWithItsTestRootOnly() throws {
        let directory = TestData.url("dcap/intel-qvl-sample")
        let quote = try Quote(parsing: TestData.bytes("dcap/intel-qvl-sample/quote.dat"))
        let collateral = try Collateral(pcsDirectory: directory)
        let testRoot = try Certificate(pemEncoded: TestData.text("dcap/intel-qvl-sample/trustedRootCaCert.pem"))
        let at = ISO8601DateFormatter().date(from: "2020-01-01T00:00:00Z")!
        let verified = try QuoteVerifier(trustedRoot: testRoot).verify(quote, collateral: collateral, at: at)
        #expect(verified.tee == .sgx)
        #expect {
            _ = try QuoteVerifier().verify(quote, collateral: collateral, at: at)
        } throws: { [.untrustedRoot, .crlSignature].contains(($0 as? AttestationError)?.code) }
    }
}
