import Crypto
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import PKCS11
import SwiftASN1
import X509
import _CryptoExtras

/// Opens the token a `--pkcs11-config` file names, with the error as one CLI line.
func openToken(_ configurationPath: String) throws -> PKCS11Token {
    do throws(PKCS11Error) {
        return try PKCS11Token.open(PKCS11Configuration.read(configurationPath))
    } catch {
        throw CLIError(error.message)
    }
}

/// Runs a token operation, turning its error into a CLI line.
func onToken<T>(_ body: () throws(PKCS11Error) -> T) throws -> T {
    do throws(PKCS11Error) {
        return try body()
    } catch {
        throw CLIError(error.message)
    }
}

/// A user's TLS client key in a PKCS #11 token: BoringSSL asks it for each handshake
/// signature, and the token makes it (swift-nio-ssl's custom private key).
struct TokenTLSKey: NIOSSLCustomPrivateKey, Hashable {
    enum Kind: Hashable { case rsa, p256, p384 }

    let token: PKCS11Token
    let key: PKCS11Token.Object
    let kind: Kind

    /// The key's kind, from the public key of its certificate.
    init(token: PKCS11Token, key: PKCS11Token.Object, certificate: Certificate) throws {
        self.token = token
        self.key = key
        if P256.Signing.PublicKey(certificate.publicKey) != nil {
            kind = .p256
        } else if P384.Signing.PublicKey(certificate.publicKey) != nil {
            kind = .p384
        } else if _RSA.Signing.PublicKey(certificate.publicKey) != nil {
            kind = .rsa
        } else {
            throw CLIError("the token's certificate has a key type the CLI cannot sign TLS with (RSA, P-256 or P-384)")
        }
    }

    var signatureAlgorithms: [SignatureAlgorithm] {
        switch kind {
        case .rsa: return [.rsaPssRsaeSha256, .rsaPkcs1Sha256]
        case .p256: return [.ecdsaSecp256R1Sha256]
        case .p384: return [.ecdsaSecp384R1Sha384]
        }
    }

    func sign(channel: Channel, algorithm: SignatureAlgorithm, data: ByteBuffer) -> EventLoopFuture<ByteBuffer> {
        let message = Array(buffer: data)
        // A token call blocks (a hardware token for tens of milliseconds): not on the event loop.
        return NIOThreadPool.singleton.runIfActive(eventLoop: channel.eventLoop) {
            ByteBuffer(bytes: try signature(algorithm: algorithm, message: message))
        }
    }

    func signature(algorithm: SignatureAlgorithm, message: [UInt8]) throws -> [UInt8] {
        switch algorithm {
        case .ecdsaSecp256R1Sha256 where kind == .p256:
            let raw = try onToken { () throws(PKCS11Error) in
                try token.sign(Array(SHA256.hash(data: message)), with: key, mechanism: .ecdsa)
            }
            return Array(try P256.Signing.ECDSASignature(rawRepresentation: raw).derRepresentation)
        case .ecdsaSecp384R1Sha384 where kind == .p384:
            let raw = try onToken { () throws(PKCS11Error) in
                try token.sign(Array(SHA384.hash(data: message)), with: key, mechanism: .ecdsa)
            }
            return Array(try P384.Signing.ECDSASignature(rawRepresentation: raw).derRepresentation)
        case .rsaPssRsaeSha256 where kind == .rsa:
            return try onToken { () throws(PKCS11Error) in try token.sign(message, with: key, mechanism: .rsaPSSSHA256)
            }
        case .rsaPkcs1Sha256 where kind == .rsa:
            return try token.pkcs1SHA256Signature(of: message, with: key)
        default:
            throw CLIError("the TLS handshake asked the token's key for \(algorithm), which it does not offer")
        }
    }

    func decrypt(channel: Channel, data: ByteBuffer) -> EventLoopFuture<ByteBuffer> {
        // Only RSA key exchange decrypts, and TLS 1.2+ with these ciphers never uses it.
        channel.eventLoop.makeFailedFuture(CLIError("the token's TLS key does not decrypt"))
    }

    static func == (lhs: TokenTLSKey, rhs: TokenTLSKey) -> Bool {
        lhs.token === rhs.token && lhs.key == rhs.key
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(ObjectIdentifier(token))
        hasher.combine(key)
    }
}

/// A recovery key in a PKCS #11 token: RSA-OAEP-SHA256 decryption and PKCS #1 v1.5 SHA-256
/// signatures, made by the token.
struct TokenRecoveryKey: RecoveryPrivateKey {
    let token: PKCS11Token
    let key: PKCS11Token.Object
    let modulusLength: Int

    init(token: PKCS11Token, selector: PKCS11Token.Selector) throws {
        self.token = token
        let key = try onToken { () throws(PKCS11Error) in try token.find(.privateKey, selector) }
        self.key = key
        guard let modulus = try? token.attribute(.modulus, of: key) else {
            throw CLIError("the token's private key with \(selector) is not an RSA key")
        }
        // A leading zero byte is not part of the length.
        modulusLength = modulus.drop(while: { $0 == 0 }).count
        guard modulusLength >= 256 else {
            throw CLIError("the token's key with \(selector) is not an RSA key of 2048 bits or more")
        }
    }

    func decrypt(_ ciphertext: [UInt8]) throws -> [UInt8] {
        do throws(PKCS11Error) {
            return try token.decrypt(ciphertext, with: key, mechanism: .rsaOAEPSHA256)
        } catch {
            if error.code == .mechanism {
                throw CLIError(
                    "the token cannot decrypt RSA-OAEP with SHA-256, which RecoverySecrets are encrypted with (\(error.message)); SoftHSM2 before 2.7 offers OAEP with SHA-1 only; keep the recovery key in a token that has it (openCryptoki's soft token has)"
                )
            }
            throw CLIError(
                "the recovery secret does not decrypt with the token's key: is it your entry of RecoverySecrets? (\(error.message))"
            )
        }
    }

    func signature(for message: [UInt8]) throws -> [UInt8] {
        try token.pkcs1SHA256Signature(of: message, with: key)
    }
}

extension PKCS11Token {
    /// RSASSA-PKCS1-v1_5 with SHA-256 by `key`, the same bytes either way: hashed by the token
    /// where it offers `CKM_SHA256_RSA_PKCS`, else hashed here and padded by the token
    /// (`CKM_RSA_PKCS` over the DigestInfo), as MarbleRun's CLI signs.
    func pkcs1SHA256Signature(of message: [UInt8], with key: Object) throws -> [UInt8] {
        do throws(PKCS11Error) {
            return try sign(message, with: key, mechanism: .rsaPKCS1SHA256)
        } catch {
            guard error.code == .mechanism else { throw CLIError(error.message) }
        }
        let digestInfo = try SHA256DigestInfo(digest: Array(SHA256.hash(data: message))).derBytes()
        return try onToken { () throws(PKCS11Error) in
            try sign(digestInfo, with: key, mechanism: .rsaPKCS1DigestInfo)
        }
    }
}

/// `DigestInfo ::= SEQUENCE { digestAlgorithm AlgorithmIdentifier, digest OCTET STRING }` for
/// SHA-256 (RFC 8017, 9.2): what RSASSA-PKCS1-v1_5 pads and signs.
struct SHA256DigestInfo: DERSerializable {
    static let sha256: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 2, 1]
    let digest: [UInt8]

    func serialize(into coder: inout DER.Serializer) throws {
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            try coder.appendConstructedNode(identifier: .sequence) { coder in
                try coder.serialize(Self.sha256)
                try coder.serialize(ASN1Null())
            }
            try coder.serialize(ASN1OctetString(contentBytes: digest[...]))
        }
    }

    func derBytes() throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(self)
        return serializer.serializedBytes
    }
}
