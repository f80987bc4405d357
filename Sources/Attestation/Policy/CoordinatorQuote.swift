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
        try verifiedRoot(
            binding: { Array(SHA256.hash(data: $0 + nonce)) }, what: "its root certificate and our nonce",
            policy: policy, verifier: verifier, collateral: collateral, at: now)
    }

    /// What a Coordinator's quote binds when it hands the data key to a replica: SHA-256 of a
    /// label, the root, the replica's nonce and SHA-256 of the TLS client certificate the
    /// replica presented. The label keeps it apart from `/quote`'s SHA-256(root ‖ nonce)
    /// (whose preimage starts with the root's DER, 0x30), so a relay cannot pass off a
    /// quote anyone can fetch, and the certificate ties it to the replica's own connection.
    public static func handOverReportData(root: [UInt8], nonce: [UInt8], replicaCertificate: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: Array(handOverLabel.utf8) + [0])
        hasher.update(data: root)
        hasher.update(data: nonce)
        hasher.update(data: Array(SHA256.hash(data: replicaCertificate)))
        return Array(hasher.finalize())
    }

    static let handOverLabel = "marblerun-swift replica key hand-over v1"

    /// The root, once the quote verifies, shows `policy` and its first 32 bytes of report data
    /// are `binding(root DER)`.
    public func verifiedRoot(
        binding: ([UInt8]) -> [UInt8], what: String, policy: PackagePolicy, verifier: QuoteVerifier,
        collateral: Collateral, at now: Date = Date()
    ) throws(AttestationError) -> Certificate {
        let root = chain[chain.count - 1]
        let verified = try verifier.verify(quote, collateral: collateral, at: now)
        let rootDER: [UInt8]
        do {
            rootDER = try root.serializeAsPEM().derBytes
        } catch {
            throw AttestationError(.malformedCertificate, "the Coordinator's root certificate cannot be encoded")
        }
        guard Array(verified.reportData.prefix(32)) == binding(rootDER) else {
            throw AttestationError(.policy, "the Coordinator's quote does not bind \(what)")
        }
        do {
            try policy.check(verified)
        } catch {
            throw AttestationError(.policy, "the Coordinator is not the one the era config describes: \(error.message)")
        }
        return root
    }
}
