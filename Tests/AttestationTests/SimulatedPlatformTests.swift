import Attestation
import Crypto
import Foundation
import Testing

@Suite struct SimulatedPlatformTests {
    static let now = Date()
    static let enclave = SimulatedEnclave(
        uniqueID: Array(SHA256.hash(data: Array("marble binary".utf8))),
        signerID: Array(SHA256.hash(data: Array("signer".utf8))),
        productID: 7, securityVersion: 3)

    @Test func quotesVerifyOnIntelsPathWithTheSimulatedRoot() throws {
        let platform = try SimulatedPlatform.generate(now: Self.now)
        let reportData = Array(SHA256.hash(data: Array("tls key".utf8)))
        let quote = try Quote(parsing: platform.quote(reportData: reportData, enclave: Self.enclave))
        let verified = try platform.verifier.verify(quote, collateral: platform.collateral, at: Self.now)
        #expect(verified.tcbStatus == .upToDate)
        #expect(verified.advisoryIDs == [])
        #expect(verified.uniqueID == Self.enclave.uniqueID)
        #expect(verified.signerID == Self.enclave.signerID)
        #expect(verified.productID == 7 && verified.securityVersion == 3 && !verified.debug)
        #expect(Array(verified.reportData.prefix(32)) == reportData)
    }

    @Test func debugEnclavesSayThey() throws {
        let platform = try SimulatedPlatform.generate(now: Self.now)
        var enclave = Self.enclave
        enclave.debug = true
        let verified = try platform.verifier.verify(
            Quote(parsing: platform.quote(reportData: [], enclave: enclave)), collateral: platform.collateral,
            at: Self.now)
        #expect(verified.debug)
    }

    @Test func anOlderPlatformIsOutOfDateWithItsAdvisory() throws {
        var configuration = SimulatedPlatform.Configuration()
        configuration.tcbComponents = [3, 3, 2, 2, 255, 255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        let platform = try SimulatedPlatform.generate(configuration: configuration, now: Self.now)
        let verified = try platform.verifier.verify(
            Quote(parsing: platform.quote(reportData: [], enclave: Self.enclave)), collateral: platform.collateral,
            at: Self.now)
        #expect(verified.tcbStatus == .outOfDate)
        #expect(verified.advisoryIDs == ["INTEL-SA-00615"])
    }

    @Test func aPlatformBelowEveryLevelIsRejected() throws {
        var configuration = SimulatedPlatform.Configuration()
        configuration.pceSVN = 10
        let platform = try SimulatedPlatform.generate(configuration: configuration, now: Self.now)
        #expect {
            _ = try platform.verifier.verify(
                Quote(parsing: platform.quote(reportData: [], enclave: Self.enclave)), collateral: platform.collateral,
                at: Self.now)
        } throws: { ($0 as? AttestationError)?.code == .noMatchingTCBLevel }
    }

    @Test func aRevokedPCKCertificateIsRejected() throws {
        var configuration = SimulatedPlatform.Configuration()
        configuration.revokePCK = true
        let platform = try SimulatedPlatform.generate(configuration: configuration, now: Self.now)
        #expect {
            _ = try platform.verifier.verify(
                Quote(parsing: platform.quote(reportData: [], enclave: Self.enclave)), collateral: platform.collateral,
                at: Self.now)
        } throws: { ($0 as? AttestationError)?.code == .certificateRevoked }
    }

    @Test func expiredCollateralIsRejected() throws {
        var configuration = SimulatedPlatform.Configuration()
        configuration.collateralValidity = 3600
        let platform = try SimulatedPlatform.generate(configuration: configuration, now: Self.now)
        let quote = try Quote(parsing: platform.quote(reportData: [], enclave: Self.enclave))
        #expect {
            _ = try platform.verifier.verify(
                quote, collateral: platform.collateral, at: Self.now.addingTimeInterval(7200))
        } throws: { ($0 as? AttestationError)?.code == .crlExpired }
        // Fresh collateral from the same platform verifies again.
        let later = Self.now.addingTimeInterval(7200)
        let refreshed = try platform.refreshingCollateral(at: later)
        #expect(
            try refreshed.verifier.verify(quote, collateral: refreshed.collateral, at: later).tcbStatus == .upToDate)
    }

    @Test func anotherRootIsNotTrusted() throws {
        let platform = try SimulatedPlatform.generate(now: Self.now)
        let other = try SimulatedPlatform.generate(now: Self.now)
        let quote = try Quote(parsing: platform.quote(reportData: [], enclave: Self.enclave))
        for verifier in [QuoteVerifier(), other.verifier] {
            #expect {
                _ = try verifier.verify(quote, collateral: platform.collateral, at: Self.now)
            } throws: { [.untrustedRoot, .crlSignature].contains(($0 as? AttestationError)?.code) }
        }
    }
}
