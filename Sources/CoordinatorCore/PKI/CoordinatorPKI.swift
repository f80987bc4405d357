import Crypto
import Foundation
import Manifest
import SwiftASN1
import X509

/// The Coordinator's certificate authority (compat §5): a self-signed root, an intermediate
/// signed by it, and the "marble root" — a self-signed certificate with the intermediate's
/// subject and key — which signs marble certificates. A marble certificate therefore verifies
/// both against the marble root alone and through the intermediate to the Coordinator root.
public struct CoordinatorPKI: Sendable {
    public static let rootName = "MarbleRun Coordinator"
    public static let intermediateName = "MarbleRun Coordinator - Intermediate CA"
    /// The extension carrying a marble certificate's marble type (MarbleRun's OID).
    public static let marbleTypeOID: ASN1ObjectIdentifier = [1, 3, 9903, 2, 1]

    public let rootKey: SigningKey
    public let root: Certificate
    public private(set) var intermediateKey: SigningKey
    public private(set) var intermediate: Certificate
    public private(set) var marbleRoot: Certificate

    public init(
        rootKey: SigningKey, root: Certificate, intermediateKey: SigningKey, intermediate: Certificate,
        marbleRoot: Certificate
    ) {
        self.rootKey = rootKey
        self.root = root
        self.intermediateKey = intermediateKey
        self.intermediate = intermediate
        self.marbleRoot = marbleRoot
    }

    /// A new root, intermediate and marble root valid for `validity` from `now`. The root is
    /// also the client API's TLS certificate, so it names the Coordinator's `dnsNames`
    /// (entries that are IP addresses become IP SANs), as MarbleRun's root does.
    public static func generate(
        curve: CACurve = .p256, now: Date = Date(), validity: TimeInterval = 10 * 365 * 86_400,
        dnsNames: [String] = ["localhost"]
    ) throws -> CoordinatorPKI {
        let rootKey = SigningKey.generate(curve)
        let rootName = try DistinguishedName { CommonName(Self.rootName) }
        let root = try caCertificate(
            subject: rootName, key: rootKey.publicKey, issuer: rootName, issuerKey: rootKey, now: now,
            validity: validity, names: dnsNames)
        var pki = CoordinatorPKI(
            rootKey: rootKey, root: root, intermediateKey: rootKey, intermediate: root, marbleRoot: root)
        try pki.renewIntermediate(curve: curve, now: now, validity: validity)
        return pki
    }

    /// A new intermediate and marble root under the same root (done on every manifest update).
    public mutating func renewIntermediate(curve: CACurve, now: Date, validity: TimeInterval) throws {
        let key = SigningKey.generate(curve)
        let name = try DistinguishedName { CommonName(Self.intermediateName) }
        intermediate = try Self.caCertificate(
            subject: name, key: key.publicKey, issuer: root.subject, issuerKey: rootKey, now: now, validity: validity)
        marbleRoot = try Self.caCertificate(
            subject: name, key: key.publicKey, issuer: name, issuerKey: key, now: now, validity: validity)
        intermediateKey = key
    }

    static func caCertificate(
        subject: DistinguishedName, key: Certificate.PublicKey, issuer: DistinguishedName, issuerKey: SigningKey,
        now: Date,
        validity: TimeInterval, names: [String] = []
    ) throws -> Certificate {
        let alternativeNames = SubjectAlternativeNames(
            names.map { name in
                if let address = IPAddress.parse(name) {
                    return .ipAddress(ASN1OctetString(contentBytes: address[...]))
                }
                return .dnsName(name)
            })
        return try Certificate(
            version: .v3, serialNumber: .init(), publicKey: key, notValidBefore: now.addingTimeInterval(-300),
            notValidAfter: now.addingTimeInterval(validity), issuer: issuer, subject: subject,
            signatureAlgorithm: issuerKey.signatureAlgorithm,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: key)
                if !alternativeNames.isEmpty { alternativeNames }
            },
            issuerPrivateKey: issuerKey.certificateKey)
    }

    /// A marble's certificate: CN = its UUID, the marble type in extension 1.3.9903.2.1, the
    /// SANs it asked for, signed by the marble root, valid for `validity`.
    public func issueMarbleCertificate(
        publicKey: Certificate.PublicKey, uuid: UUID, marbleType: String,
        subjectAlternativeNames: SubjectAlternativeNames,
        now: Date, validity: TimeInterval
    ) throws -> Certificate {
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
            try ExtendedKeyUsage([.serverAuth, .clientAuth])
            AuthorityKeyIdentifier(keyIdentifier: SubjectKeyIdentifier(hash: intermediateKey.publicKey).keyIdentifier)
            Certificate.Extension(oid: Self.marbleTypeOID, critical: false, value: Array(marbleType.utf8)[...])
            if !subjectAlternativeNames.isEmpty { subjectAlternativeNames }
        }
        return try Certificate(
            version: .v3, serialNumber: .init(), publicKey: publicKey, notValidBefore: now.addingTimeInterval(-300),
            notValidAfter: min(now.addingTimeInterval(validity), marbleRoot.notValidAfter), issuer: marbleRoot.subject,
            subject: try DistinguishedName { CommonName(uuid.uuidString.lowercased()) },
            signatureAlgorithm: intermediateKey.signatureAlgorithm,
            extensions: extensions, issuerPrivateKey: intermediateKey.certificateKey)
    }
}
