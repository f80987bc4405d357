import Foundation
import Manifest
import SwiftASN1
import X509

/// Turns a manifest's Go-style certificate template into a certificate signed by the marble
/// root: subject, SANs, validity (NotBefore/NotAfter or ValidFor days, default 365), key usages
/// (Go's bit values), CA flag. With no usages given, a TLS certificate (server and client).
struct CertificateTemplateRenderer {
    let pki: CoordinatorPKI
    let now: Date

    static let defaultValidityDays: UInt64 = 365

    func issue(_ template: Manifest.CertificateTemplate, validFor: UInt64?, publicKey: Certificate.PublicKey) throws
        -> Certificate
    {
        let notBefore = template.notBefore.flatMap(Self.parseTime) ?? now.addingTimeInterval(-300)
        let notAfter =
            template.notAfter.flatMap(Self.parseTime)
            ?? now.addingTimeInterval(TimeInterval(validFor ?? Self.defaultValidityDays) * 86_400)
        let subject = try Self.subject(template.subject)
        var sans: [GeneralName] = []
        for name in template.dnsNames ?? [] { sans.append(.dnsName(name)) }
        for address in template.ipAddresses ?? [] {
            if let bytes = IPAddress.parse(address) {
                sans.append(.ipAddress(ASN1OctetString(contentBytes: bytes[...])))
            }
        }
        for email in template.emailAddresses ?? [] { sans.append(.rfc822Name(email)) }
        let isCA = template.isCA ?? false
        let extensions = try Certificate.Extensions {
            if isCA {
                Critical(
                    BasicConstraints.isCertificateAuthority(
                        maxPathLength: template.maxPathLen.flatMap { $0 >= 0 ? Int($0) : nil }))
            } else {
                Critical(BasicConstraints.notCertificateAuthority)
            }
            Critical(Self.keyUsage(template.keyUsage, isCA: isCA))
            try ExtendedKeyUsage(Self.extendedKeyUsages(template.extKeyUsage))
            AuthorityKeyIdentifier(
                keyIdentifier: SubjectKeyIdentifier(hash: pki.intermediateKey.publicKey).keyIdentifier)
            if !sans.isEmpty { SubjectAlternativeNames(sans) }
        }
        let serial = template.serialNumber.flatMap(Self.serialNumber) ?? Certificate.SerialNumber()
        return try Certificate(
            version: .v3, serialNumber: serial, publicKey: publicKey, notValidBefore: notBefore,
            notValidAfter: notAfter,
            issuer: pki.marbleRoot.subject, subject: subject,
            signatureAlgorithm: pki.intermediateKey.signatureAlgorithm,
            extensions: extensions, issuerPrivateKey: pki.intermediateKey.certificateKey)
    }

    static func subject(_ name: Manifest.DistinguishedName?) throws -> DistinguishedName {
        guard let name else { return DistinguishedName() }
        return try DistinguishedName {
            for value in name.country ?? [] { CountryName(value) }
            for value in name.province ?? [] { StateOrProvinceName(value) }
            for value in name.locality ?? [] { LocalityName(value) }
            for value in name.organization ?? [] { OrganizationName(value) }
            for value in name.organizationalUnit ?? [] { OrganizationalUnitName(value) }
            if let commonName = name.commonName { CommonName(commonName) }
        }
    }

    /// Go's x509.KeyUsage bits: 1 digitalSignature, 2 contentCommitment, 4 keyEncipherment,
    /// 8 dataEncipherment, 16 keyAgreement, 32 certSign, 64 cRLSign, 128 encipherOnly, 256 decipherOnly.
    static func keyUsage(_ bits: UInt64?, isCA: Bool) -> KeyUsage {
        guard let bits, bits != 0 else {
            return isCA
                ? KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true)
                : KeyUsage(digitalSignature: true, keyEncipherment: true)
        }
        return KeyUsage(
            digitalSignature: bits & 1 != 0, nonRepudiation: bits & 2 != 0, keyEncipherment: bits & 4 != 0,
            dataEncipherment: bits & 8 != 0, keyAgreement: bits & 16 != 0, keyCertSign: bits & 32 != 0,
            cRLSign: bits & 64 != 0,
            encipherOnly: bits & 128 != 0, decipherOnly: bits & 256 != 0)
    }

    /// Go's x509.ExtKeyUsage values (1 server, 2 client, 3 code signing, 4 e-mail, 8 time stamping, 9 OCSP).
    static func extendedKeyUsages(_ values: [UInt64]?) -> [ExtendedKeyUsage.Usage] {
        guard let values, !values.isEmpty else { return [.serverAuth, .clientAuth] }
        return values.compactMap { value in
            switch value {
            case 0: return .any
            case 1: return .serverAuth
            case 2: return .clientAuth
            case 3: return .codeSigning
            case 4: return .emailProtection
            case 8: return .timeStamping
            case 9: return .ocspSigning
            default: return nil
            }
        }
    }

    static func parseTime(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }

    /// A positive decimal serial number (at most 20 bytes, validated with the manifest).
    static func serialNumber(_ decimal: String) -> Certificate.SerialNumber? {
        var bytes: [UInt8] = [0]
        for character in decimal.utf8 {
            guard (48...57).contains(character) else { return nil }
            var carry = Int(character - 48)
            for index in bytes.indices.reversed() {
                let value = Int(bytes[index]) * 10 + carry
                bytes[index] = UInt8(value & 0xFF)
                carry = value >> 8
            }
            while carry > 0 {
                bytes.insert(UInt8(carry & 0xFF), at: 0)
                carry >>= 8
            }
        }
        while bytes.count > 1 && bytes[0] == 0 { bytes.removeFirst() }
        return bytes == [0] ? nil : Certificate.SerialNumber(bytes: bytes[...])
    }
}
