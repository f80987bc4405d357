import Foundation
import X509

/// Validates a certificate chain (leaf first) up to a pinned root at a given time, with the
/// CRLs that apply; signatures are checked with swift-certificates.
struct ChainValidator {
    let root: Certificate
    let time: Date

    /// `chain` may end with the root itself; it is compared with the pinned one, never trusted.
    func validate(_ chain: [Certificate], name: String, crls: [CertificateRevocationList]) throws(AttestationError) {
        var certificates = chain
        if let last = certificates.last, last.subject == last.issuer {
            guard last == root else {
                throw AttestationError(
                    .untrustedRoot, "the \(name) ends in \(last.subject), which is not the trusted root")
            }
            certificates.removeLast()
        }
        guard !certificates.isEmpty else {
            throw AttestationError(.certificateChain, "the \(name) holds no certificate below the root")
        }
        for (index, certificate) in certificates.enumerated() {
            let issuer = index + 1 < certificates.count ? certificates[index + 1] : root
            guard certificate.issuer == issuer.subject else {
                throw AttestationError(
                    index + 1 < certificates.count ? .certificateChain : .untrustedRoot,
                    "\(certificate.subject) in the \(name) is issued by \(certificate.issuer), not by \(issuer.subject)"
                )
            }
            guard issuer.publicKey.isValidSignature(certificate.signature, for: certificate) else {
                throw AttestationError(
                    index + 1 < certificates.count ? .certificateChain : .untrustedRoot,
                    "the signature on \(certificate.subject) in the \(name) does not verify with \(issuer.subject)'s key"
                )
            }
            if index > 0 {
                let constraints = try? certificates[index].extensions.basicConstraints
                guard case .isCertificateAuthority = constraints else {
                    throw AttestationError(
                        .certificateChain, "\(certificate.subject) in the \(name) is not a CA but issued a certificate")
                }
            }
            for crl in crls where crl.issuer == certificate.issuer && crl.isRevoked(certificate) {
                throw AttestationError(
                    .certificateRevoked, "\(certificate.subject) in the \(name) is revoked by its issuer's CRL")
            }
        }
        for certificate in certificates + [root] {
            if time < certificate.notValidBefore || time > certificate.notValidAfter {
                throw AttestationError(
                    .certificateExpired,
                    "\(certificate.subject) in the \(name) is valid from \(certificate.notValidBefore) to \(certificate.notValidAfter), not at \(time)"
                )
            }
        }
    }
}
