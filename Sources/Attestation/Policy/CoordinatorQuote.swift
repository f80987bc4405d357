import Crypto
import Foundation
import X509

/// A Coordinator's answer to `GET /api/v2/quote?nonce=…` (compat §1), checked the way every
/// client must before it trusts the Coordinator's root: the quote verifies, its report data is
/// SHA-256(root DER ‖ nonce), and it shows the expected identity. Used by the CLI and by marbles.
public struct CoordinatorQuote: Sendable {
    /// The certificates the Coordinator sent (intermediate, root); the root is the last.
    public let chain: [Certificate]
    public let quote: Quote

    /// `nonce` as the `?nonce=` query value of `/api/v2/quote`: URL-safe base64.
    public static func nonceParameter(_ nonce: [UInt8]) -> String {
        Data(nonce).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(
            of: "/", with: "_")
    }

    /// Parses the `cert` (PEM chain) and `quote` (raw bytes) of the answer.
    public init(chainPEM: String, quote: [UInt8]) throws(AttestationError) {
        chain = try PEMChain.certificates(in: chainPEM)
        guard !chain.isEmpty else {
            throw AttestationError(.malformedCertificate, "the Coordinator sent no certificate with its quote")
        }
        self.quote = try Quote(parsing: quote)
    }

    /// The root certificate, once the quote verifies with `collateral`, binds the root and
    /// `nonce`, and passes `policy` (the era config's identity).
    public func verifiedRoot(
        nonce: [UInt8], policy: PackagePolicy, verifier: QuoteVerifier, collateral: Collateral, at now: Date = Date()
    ) throws(AttestationError) -> Certificate {
        let root = chain[chain.count - 1]
        let verified = try verifier.verify(quote, collateral: collateral, at: now)
        var bound: [UInt8]
        do {
            bound = try root.serializeAsPEM().derBytes
        } catch {
            throw AttestationError(.malformedCertificate, "the Coordinator's root certificate cannot be encoded")
        }
        bound += nonce
        guard Array(verified.reportData.prefix(32)) == Array(SHA256.hash(data: bound)) else {
            throw AttestationError(.policy, "the Coordinator's quote does not bind its root certificate and our nonce")
        }
        do {
            try policy.check(verified)
        } catch {
            throw AttestationError(.policy, "the Coordinator is not the one the era config describes: \(error.message)")
        }
        return root
    }
}
