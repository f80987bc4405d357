import Attestation
import Crypto
import Foundation
import Manifest
import SwiftASN1
import X509

/// The endpoints behind `Config.FeatureGates` (compat §1): sign-quote and monotonic counters.
extension Coordinator {
    public static let signQuoteFeature = "SignQuoteEndpoint"
    public static let monotonicCounterFeature = "MonotonicCounter"

    /// Whether the manifest enables `feature` (names match without regard to case).
    public func isFeatureEnabled(_ feature: String) -> Bool {
        document?.manifest?.config.featureGates.contains { $0.lowercased() == feature.lowercased() } ?? false
    }

    private func requireFeature(_ feature: String) throws(CoordinatorError) {
        guard state == .acceptingMarbles else {
            throw CoordinatorError(.wrongState, "no manifest is set yet (state \(state.rawValue))")
        }
        guard isFeatureEnabled(feature) else {
            throw CoordinatorError(.forbidden, "the manifest does not enable the \(feature) feature gate")
        }
    }

    /// Verifies an SGX quote (raw or OpenEnclave-wrapped) and signs it with the root key, as
    /// MarbleRun does: ECDSA over SHA-256 of (standard base64 of the quote as sent, then the TCB
    /// status name). Returns the TCB status and the ASN.1 DER signature.
    public func signQuote(_ bytes: [UInt8]) async throws(CoordinatorError) -> (tcbStatus: String, signature: [UInt8]) {
        try await synchronize()
        try requireFeature(Self.signQuoteFeature)
        let verified: VerifiedQuote
        do {
            let quote = try Quote(parsing: bytes)
            let collateral = try await collateralProvider.collateral(for: quote)
            verified = try verifier.verify(quote, collateral: collateral, at: configuration.now())
        } catch {
            throw CoordinatorError(.invalidRequest, "the quote does not verify: \(error.message) [\(error.code)]")
        }
        let status = verified.tcbStatus.rawValue
        let message = Array((Data(bytes).base64EncodedString() + status).utf8)
        do {
            return (status, try pki.rootKey.signature(forDigest: SHA256.hash(data: message)))
        } catch {
            throw CoordinatorError(.internalFailure, "signing the quote failed")
        }
    }

    /// The marble type and UUID of a certificate this Coordinator issued to a marble (signed by
    /// the current marble root, valid now).
    public func verifyMarble(_ certificateDER: [UInt8]?) throws(CoordinatorError) -> (type: String, uuid: UUID) {
        let refusal = CoordinatorError(
            .unauthenticated, "this call needs the client certificate of a marble activated by this Coordinator")
        guard let certificateDER, let certificate = try? Certificate(derEncoded: certificateDER) else { throw refusal }
        let now = configuration.now()
        guard certificate.issuer == pki.marbleRoot.subject,
            pki.marbleRoot.publicKey.isValidSignature(certificate.signature, for: certificate),
            certificate.notValidBefore <= now, now <= certificate.notValidAfter,
            let commonName = certificate.subject.flatMap({ $0 }).first(where: {
                $0.type == .RDNAttributeType.commonName
            }),
            let uuid = UUID(uuidString: String(describing: commonName.value)),
            let typeExtension = certificate.extensions[oid: CoordinatorPKI.marbleTypeOID]
        else { throw refusal }
        return (String(decoding: typeExtension.value, as: UTF8.self), uuid)
    }

    /// Raises the marble's counter `name` to `value` if that is higher, durably; returns the
    /// value before. Counters belong to one marble (type and UUID) and only increase.
    public func setMonotonicCounter(marbleType: String, uuid: UUID, name: String, value: UInt64)
        async throws(CoordinatorError) -> UInt64
    {
        try await synchronize()
        try requireFeature(Self.monotonicCounterFeature)
        guard !name.isEmpty, name.utf8.count <= 256 else {
            throw CoordinatorError(.invalidRequest, "a counter name has 1 to 256 bytes")
        }
        // Unambiguous: each part base64, as MarbleRun's counter IDs.
        let id = [Array(marbleType.utf8), withUnsafeBytes(of: uuid.uuid) { Array($0) }, Array(name.utf8)]
            .map { Data($0).base64EncodedString() }.joined(separator: ":")
        let record = "counter/\(id)"
        let current = try await sealed.read(record)
        let previous = current.map { $0.bytes.reduce(UInt64(0)) { $0 << 8 | UInt64($1) } } ?? 0
        if value > previous {
            let bytes = withUnsafeBytes(of: value.bigEndian) { Array($0) }
            try await sealed.commit([try sealed.write(record, bytes, expectedVersion: current?.version)])
        }
        return previous
    }
}
