import Attestation
import AuditLog
import Crypto
import Foundation
import JSONText
import Manifest
import X509

/// What a verified statement proves.
public struct StatementProof: Sendable {
    /// The Coordinator's quote, verified at ``time``.
    public var coordinator: VerifiedQuote
    /// The root certificate the quote binds; it signed the manifest and every log line.
    public var root: Certificate
    /// The statement's time (bound to the quote through the nonce).
    public var statementTime: Date
    /// The time the quote and collateral were checked at.
    public var checkedAt: Date
    /// SHA-256 (hex) of the manifest.
    public var manifestFingerprint: String
    /// The update log's entries, in order.
    public var log: [AuditEntry]
}

/// Checks a ``ClusterStatement`` with no network: the collateral and the quote at a given time,
/// the quote's binding of the root certificate and the statement's time, the era config's
/// identity, the update log's signatures and chain, and the manifest against the log and the
/// root's signature.
public struct StatementVerifier: Sendable {
    public var verifier: QuoteVerifier
    public var policy: PackagePolicy

    public init(verifier: QuoteVerifier, policy: PackagePolicy) {
        self.verifier = verifier
        self.policy = policy
    }

    /// Verifies `statement` as of `time` (default: now). With `expectedManifest`, the
    /// statement's manifest must be exactly those JSON bytes.
    public func verify(_ statement: ClusterStatement, at time: Date = Date(), expectedManifest: [UInt8]? = nil)
        throws(StatementError) -> StatementProof
    {
        guard let statementTime = try? Date(statement.time, strategy: .iso8601) else {
            throw StatementError(.time, "\"\(statement.time.prefix(40))\" is not an RFC 3339 time")
        }
        guard statement.salt.count >= 16 else { throw StatementError(.salt, "shorter than 16 bytes") }

        // Collateral: Intel's (or the simulated platform's) signatures, chains and CRLs at `time`.
        let collateral: Collateral
        let prepared: PreparedCollateral
        do {
            collateral = try Collateral(dcapQVLBundle: statement.collateral.serialized())
            prepared = try verifier.prepare(collateral, at: time)
        } catch {
            throw StatementError(.collateral, "\(error.message) [\(error.code)]")
        }

        // The quote: its signatures, its PCK chain and CRL, its TCB level.
        let verified: VerifiedQuote
        do {
            let quote = try Quote(parsing: statement.quote)
            verified = try verifier.verify(quote, with: prepared, at: time)
        } catch {
            let collateralCodes: Set<AttestationError.Code> = [.malformedCRL, .crlSignature, .crlExpired]
            throw StatementError(
                collateralCodes.contains(error.code) ? .collateral : .quote, "\(error.message) [\(error.code)]")
        }

        // The root: self-signed, valid at `time`, and the issuer of the intermediate.
        let chain: [Certificate]
        do {
            chain = try PEMChain.certificates(in: statement.certificateChain)
        } catch {
            throw StatementError(.certificateChain, error.message)
        }
        guard let root = chain.last else { throw StatementError(.certificateChain, "no certificate") }
        guard root.publicKey.isValidSignature(root.signature, for: root) else {
            throw StatementError(.certificateChain, "the root certificate's self-signature does not verify")
        }
        for (certificate, issuer) in zip(chain, chain.dropFirst()) {
            guard certificate.issuer == issuer.subject,
                issuer.publicKey.isValidSignature(certificate.signature, for: certificate)
            else {
                throw StatementError(.certificateChain, "\(certificate.subject) is not signed by the next certificate")
            }
        }
        guard root.notValidBefore <= time, time <= root.notValidAfter else {
            throw StatementError(
                .certificateChain, "the root certificate is not valid at \(ClusterStatement.timestamp(time))")
        }

        // The binding: report data = SHA-256(root DER ‖ nonce(time, salt)). The root verified
        // above, so a mismatch is a changed time or salt (or a root the quote never bound).
        let rootDER: [UInt8]
        do {
            rootDER = try root.serializeAsPEM().derBytes
        } catch {
            throw StatementError(.certificateChain, "the root certificate cannot be encoded")
        }
        let nonce = ClusterStatement.nonce(time: statement.time, salt: statement.salt)
        guard Array(verified.reportData.prefix(32)) == Array(SHA256.hash(data: rootDER + nonce)) else {
            throw StatementError(
                .time,
                "the quote does not bind this root certificate with this time and salt: the time, the salt or the certificate chain was changed"
            )
        }
        do {
            try policy.check(verified)
        } catch {
            throw StatementError(.quote, "the Coordinator is not the one the era config describes: \(error.message)")
        }

        // The log: every line signed by the root, the hash chain intact.
        let entries: [AuditEntry]
        do {
            entries = try AuditLog.verify(statement.updateLog.map { Array($0.utf8) }, root: root)
        } catch {
            throw StatementError(.updateLog, error.description)
        }

        // The manifest: the one the log last recorded, signed by the root.
        let fingerprint = ManifestDocument.fingerprint(of: statement.manifest)
        guard
            let recorded = entries.last(where: {
                [AuditEvent.manifestSet, AuditEvent.updateApplied].contains($0.event)
            })?.details["manifestFingerprint"]
        else {
            throw StatementError(.updateLog, "the log records no manifest")
        }
        guard recorded == fingerprint else {
            throw StatementError(
                .manifest, "its fingerprint \(fingerprint) is not the one the log last recorded (\(recorded))")
        }
        guard Self.isValidRootSignature(statement.manifestSignature, over: statement.manifest, root: root) else {
            throw StatementError(.manifestSignature, "does not verify with the Coordinator's root key")
        }
        if let expectedManifest, expectedManifest != statement.manifest {
            throw StatementError(
                .manifest,
                "not the expected manifest (the statement's fingerprint \(fingerprint), the file's \(ManifestDocument.fingerprint(of: expectedManifest)))"
            )
        }
        return StatementProof(
            coordinator: verified, root: root, statementTime: statementTime, checkedAt: time,
            manifestFingerprint: fingerprint, log: entries)
    }

    /// The root key's ECDSA signature (DER) over SHA-256 of `bytes` (P-256 or P-384).
    public static func isValidRootSignature(_ signature: [UInt8], over bytes: [UInt8], root: Certificate) -> Bool {
        let digest = SHA256.hash(data: bytes)
        if let key = P256.Signing.PublicKey(root.publicKey),
            let parsed = try? P256.Signing.ECDSASignature(derRepresentation: signature)
        {
            return key.isValidSignature(parsed, for: digest)
        }
        if let key = P384.Signing.PublicKey(root.publicKey),
            let parsed = try? P384.Signing.ECDSASignature(derRepresentation: signature)
        {
            return key.isValidSignature(parsed, for: digest)
        }
        return false
    }
}
