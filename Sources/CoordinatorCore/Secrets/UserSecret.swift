import Crypto
import Manifest
import SwiftASN1
import X509
import _CryptoExtras

/// A value a user sets for a `UserDefined` secret (MarbleRun's `UserSecret`): a certificate
/// (DER) with its private key (PKCS #8 DER) for `cert-*` secrets, or a key for `symmetric-key`
/// and `plain` ones.
public struct UserSecret: Sendable, Hashable {
    public var cert: [UInt8]?
    public var privateKey: [UInt8]?
    public var key: [UInt8]?

    public init(cert: [UInt8]? = nil, privateKey: [UInt8]? = nil, key: [UInt8]? = nil) {
        self.cert = cert
        self.privateKey = privateKey
        self.key = key
    }

    /// The secret as stored, after checking it against the manifest's definition. Errors name
    /// the secret and the problem, never the value.
    public func value(for definition: Manifest.Secret, name: String) throws(CoordinatorError) -> SecretValue {
        func refuse(_ reason: String) -> CoordinatorError {
            CoordinatorError(.invalidRequest, "secret \(name) (\(definition.type)): \(reason)")
        }
        switch definition.type {
        case "symmetric-key":
            guard cert == nil, privateKey == nil else { throw refuse("give only Key, no Cert or Private") }
            guard let key, !key.isEmpty else { throw refuse("Key is missing") }
            if let size = definition.size, size != 0, UInt64(key.count) * 8 != size {
                throw refuse("the manifest declares \(size) bits, the key has \(key.count * 8)")
            }
            return SecretValue(type: definition.type, privateKey: key, publicKey: key)
        case "plain":
            guard cert == nil, privateKey == nil else { throw refuse("give only Key, no Cert or Private") }
            let data = key ?? []
            return SecretValue(type: definition.type, privateKey: data, publicKey: data)
        default:
            guard key == nil else { throw refuse("a certificate secret takes Cert and Private, not Key") }
            guard let cert, let certificate = try? Certificate(derEncoded: cert) else {
                throw refuse("Cert is missing or is not a DER (or PEM) X.509 certificate")
            }
            try Self.check(certificate.publicKey, against: definition, refuse)
            if let privateKey {
                guard
                    let parsed = try? Certificate.PrivateKey(
                        pemDocument: PEMDocument(type: "PRIVATE KEY", derBytes: privateKey))
                else {
                    throw refuse("Private is not a PKCS #8 DER private key")
                }
                guard parsed.publicKey == certificate.publicKey else {
                    throw refuse("Private is not the key of Cert")
                }
            }
            var spki = DER.Serializer()
            do {
                try spki.serialize(certificate.publicKey)
            } catch {
                throw refuse("the certificate's public key does not serialize")
            }
            return SecretValue(
                type: definition.type, cert: cert, privateKey: privateKey ?? [], publicKey: spki.serializedBytes)
        }
    }

    /// The certificate's key must be of the secret's type and, when the manifest gives one, size.
    private static func check(
        _ key: Certificate.PublicKey, against definition: Manifest.Secret, _ refuse: (String) -> CoordinatorError
    ) throws(CoordinatorError) {
        let kind: String
        let bits: UInt64?
        if P256.Signing.PublicKey(key) != nil {
            (kind, bits) = ("cert-ecdsa", 256)
        } else if P384.Signing.PublicKey(key) != nil {
            (kind, bits) = ("cert-ecdsa", 384)
        } else if P521.Signing.PublicKey(key) != nil {
            (kind, bits) = ("cert-ecdsa", 521)
        } else if let rsa = _RSA.Signing.PublicKey(key) {
            (kind, bits) = ("cert-rsa", UInt64(rsa.keySizeInBits))
        } else if Curve25519.Signing.PublicKey(key) != nil {
            (kind, bits) = ("cert-ed25519", nil)
        } else {
            throw refuse("the certificate's key type is not supported")
        }
        guard kind == definition.type else { throw refuse("the certificate's key is not of type \(definition.type)") }
        if let size = definition.size, size != 0, let bits, bits != size {
            throw refuse("the manifest declares \(size) bits, the certificate's key has \(bits)")
        }
    }
}
