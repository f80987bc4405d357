import Attestation
import Crypto
import Foundation
import Testing
import X509

/// The quote a Coordinator makes when it hands its data key to a replica is domain-separated
/// from the quote anyone gets from `/api/v2/quote?nonce=`, and tied to the replica's certificate.
@Suite struct HandOverQuoteTests {
    static let enclave = SimulatedEnclave(
        uniqueID: Array(SHA256.hash(data: Array("coordinator".utf8))), signerID: Array(repeating: 3, count: 32))

    static func answer(_ platform: SimulatedPlatform, reportData: [UInt8]) throws -> CoordinatorQuote {
        try CoordinatorQuote(
            chainPEM: platform.rootCertificate.serializeAsPEM().pemString,
            quote: platform.quote(reportData: reportData, enclave: enclave))
    }

    @Test func aPublicQuoteOverTheNonceIsNoHandOverQuote() throws {
        let platform = try SimulatedPlatform.generate()
        let root = try platform.rootCertificate.serializeAsPEM().derBytes
        let nonce = Array(repeating: UInt8(9), count: 32)
        let replica = Array("replica certificate".utf8)
        let policy = PackagePolicy(debug: false, uniqueID: Self.enclave.uniqueID)
        func check(_ answer: CoordinatorQuote, certificate: [UInt8]) throws {
            _ = try answer.verifiedRoot(
                binding: {
                    CoordinatorQuote.handOverReportData(root: $0, nonce: nonce, replicaCertificate: certificate)
                },
                what: "the hand-over", policy: policy, verifier: platform.verifier, collateral: platform.collateral)
        }
        let handOver = try Self.answer(
            platform,
            reportData: CoordinatorQuote.handOverReportData(root: root, nonce: nonce, replicaCertificate: replica))
        try check(handOver, certificate: replica)
        #expect(throws: AttestationError(.policy, "")) { try check(handOver, certificate: Array("another".utf8)) }
        // What /quote?nonce= answers anyone: SHA-256(root ‖ nonce). It verifies as such, not as a hand-over.
        let public_ = try Self.answer(platform, reportData: Array(SHA256.hash(data: root + nonce)))
        _ = try public_.verifiedRoot(
            nonce: nonce, policy: policy, verifier: platform.verifier, collateral: platform.collateral)
        #expect(throws: AttestationError(.policy, "")) { try check(public_, certificate: replica) }
        #expect(
            CoordinatorQuote.handOverReportData(root: root, nonce: nonce, replicaCertificate: replica)
                != Array(SHA256.hash(data: root + nonce)))
    }
}
