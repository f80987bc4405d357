import Crypto
import Foundation
import Manifest
import SwiftASN1
import X509
import _CryptoExtras

/// Creates the secrets a manifest declares (compat §5): random symmetric keys for shared
/// secrets, keys derived with HKDF-SHA256 from the root secret for per-marble ones, and
/// certificates from the manifest's template signed by the marble root.
struct SecretFactory {
    let pki: CoordinatorPKI
    let now: Date

    /// A shared secret, generated once when the manifest is set.
    func generateShared(_ definition: Manifest.Secret) throws -> SecretValue {
        switch definition.type {
        case "symmetric-key":
            let key = SymmetricKey(size: .init(bitCount: Int(definition.size ?? 0)))
            let bytes = key.withUnsafeBytes { Array($0) }
            return SecretValue(type: definition.type, privateKey: bytes, publicKey: bytes)
        default:
            return try certificateSecret(definition)
        }
    }

    /// A per-marble secret: symmetric keys are derived (stable across activations of the same
    /// UUID), certificates are new on each activation.
    func generatePerMarble(
        _ definition: Manifest.Secret, name: String, marbleType: String, uuid: UUID, rootSecret: SymmetricKey,
        bindToMarble: Bool
    ) throws -> SecretValue {
        switch definition.type {
        case "symmetric-key":
            let salt = Array((uuid.uuidString.lowercased() + name).utf8)
            let info = bindToMarble ? Array(marbleType.utf8) : []
            let key = HKDF<SHA256>.deriveKey(
                inputKeyMaterial: rootSecret, salt: salt, info: info, outputByteCount: Int(definition.size ?? 0) / 8)
            let bytes = key.withUnsafeBytes { Array($0) }
            return SecretValue(type: definition.type, privateKey: bytes, publicKey: bytes)
        default:
            return try certificateSecret(definition)
        }
    }

    private func certificateSecret(_ definition: Manifest.Secret) throws -> SecretValue {
        let publicKey: Certificate.PublicKey
        let privateDER: [UInt8]
        switch definition.type {
        case "cert-ecdsa":
            // Keys travel in DER/PEM, never in compact form: skip the retries that make it possible.
            switch definition.size {
            case 384:
                let key = P384.Signing.PrivateKey(compactRepresentable: false)
                (publicKey, privateDER) = (.init(key.publicKey), Array(key.derRepresentation))
            case 521:
                let key = P521.Signing.PrivateKey(compactRepresentable: false)
                (publicKey, privateDER) = (.init(key.publicKey), Array(key.derRepresentation))
            case 256:
                let key = P256.Signing.PrivateKey(compactRepresentable: false)
                (publicKey, privateDER) = (.init(key.publicKey), Array(key.derRepresentation))
            default:
                throw CoordinatorError(
                    .invalidManifest,
                    "cert-ecdsa secrets of \(definition.size ?? 0) bits are not supported here; use 256, 384 or 521")
            }
        case "cert-rsa":
            let key = try _RSA.Signing.PrivateKey(keySize: .init(bitCount: Int(definition.size ?? 2048)))
            (publicKey, privateDER) = (.init(key.publicKey), Array(key.pkcs8DERRepresentation))
        case "cert-ed25519":
            let key = Curve25519.Signing.PrivateKey()
            (publicKey, privateDER) = (.init(key.publicKey), try Self.pkcs8(ed25519: key))
        default:
            throw CoordinatorError(.invalidManifest, "cannot generate a secret of type \(definition.type)")
        }
        let certificate = try CertificateTemplateRenderer(pki: pki, now: now).issue(
            definition.cert ?? Manifest.CertificateTemplate(), validFor: definition.validFor, publicKey: publicKey)
        return try SecretValue.certificate(certificate, type: definition.type, privateKey: privateDER)
    }

    static let ed25519OID: ASN1ObjectIdentifier = [1, 3, 101, 112]

    /// RFC 8410 PKCS #8 for an Ed25519 key: SEQUENCE { 0, { id-Ed25519 }, OCTET STRING { OCTET STRING key } }.
    static func pkcs8(ed25519 key: Curve25519.Signing.PrivateKey) throws -> [UInt8] {
        var inner = DER.Serializer()
        try inner.serialize(ASN1OctetString(contentBytes: Array(key.rawRepresentation)[...]))
        var serializer = DER.Serializer()
        try serializer.appendConstructedNode(identifier: .sequence) { sequence in
            try sequence.serialize(0)
            try sequence.appendConstructedNode(identifier: .sequence) { try $0.serialize(Self.ed25519OID) }
            try sequence.serialize(ASN1OctetString(contentBytes: inner.serializedBytes[...]))
        }
        return serializer.serializedBytes
    }
}
