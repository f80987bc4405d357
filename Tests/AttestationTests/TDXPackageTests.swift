import CoordinatorTesting
import Foundation
import Testing

@testable import Attestation

/// TDX packages against the real TDX quote of the test data: its own measurements match; any
/// changed measurement, an SGX quote for a TDX package and a TDX quote for an SGX package do not.
@Suite struct TDXPackageTests {
    static func verified(_ name: String) throws -> VerifiedQuote {
        let (quote, collateral) = try RealQuoteVerificationTests.load(name)
        return try QuoteVerifier().verify(quote, collateral: collateral, at: RealQuoteVerificationTests.july2025)
    }

    static func rule(of quote: VerifiedQuote) throws -> TDXMeasurementRule {
        let td = try #require(quote.td)
        return TDXMeasurementRule(
            mrTD: td.mrTD,
            rtmrs: Dictionary(uniqueKeysWithValues: td.rtmrs.enumerated().map { ($0.offset, $0.element) }),
            mrSeam: td.mrSeam, tdAttributes: td.tdAttributes, xfam: td.xfam)
    }

    @Test func theTrustDomainsOwnMeasurementsMatchAndEachChangeIsNamed() throws {
        let quote = try Self.verified("tdx_quote")
        let rule = try Self.rule(of: quote)
        var policy = PackagePolicy()
        policy.tdx = rule
        #expect(policy.evaluate(quote) == .accepted)
        // Only MRTD given: the others are not checked.
        policy.tdx = TDXMeasurementRule(mrTD: rule.mrTD)
        #expect(policy.evaluate(quote) == .accepted)

        func changed(_ edit: (inout TDXMeasurementRule) -> Void) -> PolicyDecision {
            var other = rule
            edit(&other)
            var policy = PackagePolicy()
            policy.tdx = other
            return policy.evaluate(quote)
        }
        func flipped(_ bytes: [UInt8]?) -> [UInt8] {
            var bytes = bytes ?? []
            bytes[0] ^= 1
            return bytes
        }
        let cases: [(String, PolicyDecision)] = [
            ("MRTD", changed { $0.mrTD = flipped($0.mrTD) }),
            ("RTMR2", changed { $0.rtmrs[2] = flipped($0.rtmrs[2]) }),
            ("MRSEAM", changed { $0.mrSeam = flipped($0.mrSeam) }),
            ("TDAttributes", changed { $0.tdAttributes = flipped($0.tdAttributes) }),
            ("XFAM", changed { $0.xfam = flipped($0.xfam) }),
        ]
        for (name, decision) in cases {
            guard case .rejected(let reason) = decision else {
                Issue.record("a changed \(name) was accepted")
                continue
            }
            #expect(reason.hasPrefix(name), "\(reason)")
        }
    }

    @Test func anSGXQuoteNeverMatchesATDXPackageNorTheOtherWay() throws {
        let tdxQuote = try Self.verified("tdx_quote")
        let sgxQuote = try Self.verified("sgx_quote")
        var tdxPackage = PackagePolicy()
        tdxPackage.tdx = try Self.rule(of: tdxQuote)
        #expect(tdxPackage.evaluate(sgxQuote) == .rejected("an SGX enclave's quote does not match a TDX package"))
        // An SGX package whose UniqueID happens to be the TD's (MRTD is 48 bytes) still refuses it.
        let sgxPackage = PackagePolicy(uniqueID: tdxQuote.uniqueID)
        #expect(
            sgxPackage.evaluate(tdxQuote) == .rejected("a TDX trust domain's quote does not match an SGX package"))
        let own = PackagePolicy(uniqueID: sgxQuote.uniqueID, acceptedTCBStatuses: [sgxQuote.tcbStatus])
        #expect(own.evaluate(sgxQuote) == .accepted, "the control: the SGX quote matches its own package")
    }

    /// A TD without SEPT_VE_DISABLE lets the host raise #VE in it: a package that does not name
    /// TDAttributes refuses it, one that names exactly these attributes accepts it; a debug TD
    /// needs a Debug package.
    @Test func aTDWithoutSEPTVEDisableOrInDebugModeNeedsAPackageThatSaysSo() throws {
        let platform = try SimulatedPlatform.generate()
        var td = SimulatedTD.named("no-sept-ve-disable")
        td.tdAttributes[3] = 0
        let quote = try Quote(parsing: platform.tdxQuote(reportData: [], td: td))
        let verified = try platform.verifier.verify(quote, collateral: platform.tdxCollateral, at: Date())
        var policy = PackagePolicy()
        policy.tdx = TDXMeasurementRule(mrTD: td.mrTD)
        guard case .rejected(let reason) = policy.evaluate(verified) else {
            Issue.record("a TD without SEPT_VE_DISABLE was accepted")
            return
        }
        #expect(reason.contains("SEPT_VE_DISABLE") && reason.contains("TDAttributes"), "\(reason)")
        policy.tdx = TDXMeasurementRule(mrTD: td.mrTD, tdAttributes: td.tdAttributes)
        #expect(policy.evaluate(verified) == .accepted)

        let debugTD = SimulatedTD.named("debug", debug: true)
        let debugQuote = try platform.verifier.verify(
            Quote(parsing: platform.tdxQuote(reportData: [], td: debugTD)), collateral: platform.tdxCollateral,
            at: Date())
        var production = PackagePolicy()
        production.tdx = TDXMeasurementRule(mrTD: debugTD.mrTD)
        #expect(production.evaluate(debugQuote) != .accepted)
        var debugPackage = PackagePolicy(debug: true)
        debugPackage.tdx = production.tdx
        #expect(debugPackage.evaluate(debugQuote) == .accepted)
    }
}
