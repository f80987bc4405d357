import Attestation
import Foundation

extension Coordinator {
    /// Key distribution between replicas: the data key, for a replica whose quote verifies,
    /// binds the TLS certificate it presented on this connection, and shows this Coordinator's
    /// own identity (``Configuration/replicaIdentity``). Anything else is refused and learns
    /// nothing. The caller sends the key only over that same connection.
    public func handOverDataKey(quote bytes: [UInt8], peerCertificate: [UInt8]) async throws(CoordinatorError)
        -> [UInt8]
    {
        guard configuration.sharedStore, let identity = configuration.replicaIdentity else {
            throw CoordinatorError(.forbidden, "this Coordinator does not hand its key to replicas")
        }
        let (quote, collateral) = try await preparedQuote(bytes)
        let verified: VerifiedQuote
        do {
            verified = try verifier.verify(quote, with: collateral, at: configuration.now())
        } catch {
            throw CoordinatorError(.attestation, "the replica's quote was rejected: \(error.message) [\(error.code)]")
        }
        try Self.checkBinding(verified, peerCertificate: peerCertificate)
        do {
            try identity.check(verified)
        } catch {
            throw CoordinatorError(.attestation, "the replica is not this Coordinator's code: \(error.message)")
        }
        return sealed.dataKeyBytes
    }
}
