import Crypto
import Foundation
import SwiftASN1
import X509

/// An X.509 CRL (RFC 5280 §5) as Intel's PKI issues them, read by walking swift-asn1 nodes:
/// issuer, validity window, revoked serial numbers, and the signature over `tbsCertList`.
public struct CertificateRevocationList: Sendable, Hashable {
    public let der: [UInt8]
    public let issuer: DistinguishedName
    public let thisUpdate: Date
    public let nextUpdate: Date?
    /// Serial numbers (DER INTEGER content bytes) of revoked certificates.
    public let revokedSerialNumbers: Set<[UInt8]>
    let tbsBytes: [UInt8]
    let signatureAlgorithm: ASN1ObjectIdentifier
    let signature: [UInt8]

    static let ecdsaWithSHA256: ASN1ObjectIdentifier = [1, 2, 840, 10045, 4, 3, 2]

    public init(derEncoded der: [UInt8]) throws(AttestationError) {
        self.der = der
        do {
            let root = try DER.parse(der)
            var parsed: (DistinguishedName, Date, Date?, Set<[UInt8]>, [UInt8], ASN1ObjectIdentifier, [UInt8])?
            try DER.sequence(root, identifier: .sequence) { nodes in
                guard let tbs = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "no tbsCertList") }
                guard let algorithmNode = nodes.next() else {
                    throw ASN1Error.invalidASN1Object(reason: "no algorithm")
                }
                let algorithm = try DER.sequence(algorithmNode, identifier: .sequence) { inner in
                    let oid = try ASN1ObjectIdentifier(derEncoded: &inner)
                    while inner.next() != nil {}
                    return oid
                }
                let signatureBits = try ASN1BitString(derEncoded: &nodes)
                // DER signatures are whole bytes; unused bits would let one CRL have several encodings.
                guard signatureBits.paddingBits == 0 else {
                    throw ASN1Error.invalidASN1Object(reason: "the signature BIT STRING has unused bits")
                }
                var fields: (DistinguishedName, Date, Date?, Set<[UInt8]>)?
                try DER.sequence(tbs, identifier: .sequence) { tbsNodes in
                    var next = tbsNodes.next()
                    if let version = next, version.identifier == .integer { next = tbsNodes.next() }
                    guard next?.identifier == .sequence else {
                        throw ASN1Error.invalidASN1Object(reason: "no signature algorithm")
                    }
                    guard let issuerNode = tbsNodes.next() else {
                        throw ASN1Error.invalidASN1Object(reason: "no issuer")
                    }
                    let issuer = try DistinguishedName(derEncoded: issuerNode)
                    guard let thisNode = tbsNodes.next() else {
                        throw ASN1Error.invalidASN1Object(reason: "no thisUpdate")
                    }
                    let thisUpdate = try Self.time(thisNode)
                    var nextUpdate: Date?
                    var revoked: Set<[UInt8]> = []
                    while let node = tbsNodes.next() {
                        if node.identifier == .utcTime || node.identifier == .generalizedTime {
                            nextUpdate = try Self.time(node)
                        } else if node.identifier == .sequence, case .constructed(let entries) = node.content {
                            for entry in entries {
                                try DER.sequence(entry, identifier: .sequence) { entryNodes in
                                    let serial = try ArraySlice<UInt8>(derEncoded: &entryNodes)
                                    revoked.insert(Array(serial))
                                    while entryNodes.next() != nil {}
                                }
                            }
                        }
                    }
                    fields = (issuer, thisUpdate, nextUpdate, revoked)
                }
                guard let fields else { throw ASN1Error.invalidASN1Object(reason: "empty tbsCertList") }
                parsed = (
                    fields.0, fields.1, fields.2, fields.3, Array(tbs.encodedBytes), algorithm,
                    Array(signatureBits.bytes)
                )
            }
            guard let parsed else { throw ASN1Error.invalidASN1Object(reason: "empty CRL") }
            (issuer, thisUpdate, nextUpdate, revokedSerialNumbers, tbsBytes, signatureAlgorithm, signature) = parsed
        } catch let error as AttestationError {
            throw error
        } catch {
            throw AttestationError(.malformedCRL, "the CRL does not parse: \(error)")
        }
    }

    /// Checks the CRL's signature by `issuerCertificate` (ECDSA P-256 with SHA-256, as Intel signs)
    /// and that it is current at `time`.
    public func validate(issuedBy issuerCertificate: Certificate, at time: Date, name: String) throws(AttestationError)
    {
        guard issuer == issuerCertificate.subject else {
            throw AttestationError(
                .crlSignature, "the \(name) is issued by \(issuer), not by \(issuerCertificate.subject)")
        }
        guard signatureAlgorithm == Self.ecdsaWithSHA256, let key = P256.Signing.PublicKey(issuerCertificate.publicKey),
            let ecdsa = try? P256.Signing.ECDSASignature(derRepresentation: signature),
            key.isValidSignature(ecdsa, for: SHA256.hash(data: tbsBytes))
        else {
            throw AttestationError(
                .crlSignature, "the \(name)'s signature does not verify with \(issuerCertificate.subject)'s key")
        }
        if time < thisUpdate {
            throw AttestationError(.crlExpired, "the \(name) is not valid before \(thisUpdate)")
        }
        if let nextUpdate, time > nextUpdate {
            throw AttestationError(.crlExpired, "the \(name) expired at \(nextUpdate); fetch fresh collateral")
        }
    }

    public func isRevoked(_ certificate: Certificate) -> Bool {
        revokedSerialNumbers.contains(Array(certificate.serialNumber.bytes))
    }

    static func time(_ node: ASN1Node) throws -> Date {
        if node.identifier == .utcTime {
            let time = try UTCTime(derEncoded: node)
            return CollateralDate.date(
                year: time.year, month: time.month, day: time.day, hour: time.hours, minute: time.minutes,
                second: time.seconds)
        }
        let time = try GeneralizedTime(derEncoded: node)
        return CollateralDate.date(
            year: time.year, month: time.month, day: time.day, hour: time.hours, minute: time.minutes,
            second: time.seconds)
    }
}
