import Attestation
import Crypto
import Foundation
import CoordinatorTesting
import Testing

/// Verification with prepared collateral gives exactly the verdicts of a full verification,
/// while checking the PCK chain and QE report once per platform.
@Suite struct PreparedCollateralTests {
    @Test func realQuotesGiveTheSameVerdict() throws {
        for (name, time) in [
            ("sgx_quote", 1_751_328_000.0), ("tdx_quote", 1_751_328_000.0), ("tdx_quote_outdated", 1_774_003_274.0),
        ] {
            let quote = try Quote(parsing: TestData.bytes("dcap/dcap-qvl/\(name)"))
            let collateral = try Collateral(dcapQVLBundle: TestData.bytes("dcap/dcap-qvl/\(name)_collateral.json"))
            let at = Date(timeIntervalSince1970: time)
            let verifier = QuoteVerifier()
            let prepared = try verifier.prepare(collateral, at: at)
            let full = Result { try verifier.verify(quote, collateral: collateral, at: at) }
            for _ in 0..<3 {
                let cached = Result { try verifier.verify(quote, with: prepared, at: at) }
                #expect(String(describing: cached) == String(describing: full), "\(name)")
            }
        }
    }

    @Test func aTamperedQuoteIsRejectedAfterItsPlatformWasCached() throws {
        let now = Date()
        let platform = try SimulatedPlatform.generate(now: now)
        let enclave = SimulatedEnclave(
            uniqueID: [UInt8](repeating: 3, count: 32), signerID: platform.defaultSigner.signerID)
        let prepared = try platform.verifier.prepare(platform.collateral, at: now)
        let good = try platform.quote(reportData: [1], enclave: enclave)
        _ = try platform.verifier.verify(Quote(parsing: good), with: prepared, at: now)
        var badReport = good
        badReport[100] ^= 1
        #expect {
            _ = try platform.verifier.verify(Quote(parsing: badReport), with: prepared, at: now)
        } throws: { ($0 as? AttestationError)?.code == .isvSignature }
        var badQE = good
        badQE[600] ^= 1
        #expect {
            _ = try platform.verifier.verify(Quote(parsing: badQE), with: prepared, at: now)
        } throws: { ($0 as? AttestationError)?.code == .qeReportSignature }
    }

    @Test func expiryIsReportedPreciselyAfterPreparation() throws {
        var configuration = SimulatedPlatform.Configuration()
        configuration.collateralValidity = 3600
        let now = Date()
        let platform = try SimulatedPlatform.generate(configuration: configuration, now: now)
        let quote = try Quote(
            parsing: platform.quote(
                reportData: [],
                enclave: SimulatedEnclave(
                    uniqueID: [UInt8](repeating: 1, count: 32), signerID: platform.defaultSigner.signerID)))
        let prepared = try platform.verifier.prepare(platform.collateral, at: now)
        #expect(prepared.validUntil <= now.addingTimeInterval(3600))
        _ = try platform.verifier.verify(quote, with: prepared, at: now)
        #expect {
            _ = try platform.verifier.verify(quote, with: prepared, at: now.addingTimeInterval(7200))
        } throws: { ($0 as? AttestationError)?.code == .crlExpired }
    }

    @Test func preparedCollateralIsTiedToItsTrustAnchor() throws {
        let now = Date()
        let platform = try SimulatedPlatform.generate(now: now)
        let prepared = try platform.verifier.prepare(platform.collateral, at: now)
        let quote = try Quote(
            parsing: platform.quote(
                reportData: [],
                enclave: SimulatedEnclave(
                    uniqueID: [UInt8](repeating: 1, count: 32), signerID: platform.defaultSigner.signerID)))
        #expect {
            _ = try QuoteVerifier().verify(quote, with: prepared, at: now)
        } throws: { ($0 as? AttestationError)?.code == .untrustedRoot }
    }
}
