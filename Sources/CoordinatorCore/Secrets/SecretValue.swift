import Manifest
import SwiftASN1
import X509

/// A secret's material as MarbleRun stores it: the certificate (DER), the private key
/// (PKCS #8 DER, or the key itself for symmetric keys) and the public part (PKIX DER, or the
/// key or plain data itself). Empty parts are absent.
public struct SecretValue: Sendable, Hashable {
    public var type: String
    public var cert: [UInt8]
    public var privateKey: [UInt8]
    public var publicKey: [UInt8]

    public init(type: String, cert: [UInt8] = [], privateKey: [UInt8] = [], publicKey: [UInt8] = []) {
        self.type = type
        self.cert = cert
        self.privateKey = privateKey
        self.publicKey = publicKey
    }

    /// What a template sees.
    var templateValue: TemplateValues.Secret {
        TemplateValues.Secret(type: type, cert: cert, privateKey: privateKey, publicKey: publicKey)
    }

    static func certificate(_ certificate: Certificate, type: String, privateKey: [UInt8]) throws -> SecretValue {
        var certificateDER = DER.Serializer()
        try certificateDER.serialize(certificate)
        var publicKeyDER = DER.Serializer()
        try publicKeyDER.serialize(certificate.publicKey)
        return SecretValue(
            type: type, cert: certificateDER.serializedBytes, privateKey: privateKey,
            publicKey: publicKeyDER.serializedBytes)
    }
}
