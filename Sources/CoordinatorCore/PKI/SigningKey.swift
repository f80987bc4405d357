import Crypto
import X509

/// The curve of the Coordinator's CA keys. P-256 is the default (P-384 signs about 25× slower
/// here); P-384 is available for deployments that require it.
public enum CACurve: String, Sendable, Hashable, CaseIterable {
    case p256 = "P-256"
    case p384 = "P-384"
}

/// A CA private key of either curve, with what certificates need from it.
public enum SigningKey: Sendable {
    case p256(P256.Signing.PrivateKey)
    case p384(P384.Signing.PrivateKey)

    public static func generate(_ curve: CACurve) -> SigningKey {
        switch curve {
        case .p256: return .p256(P256.Signing.PrivateKey())
        case .p384: return .p384(P384.Signing.PrivateKey())
        }
    }

    public var certificateKey: Certificate.PrivateKey {
        switch self {
        case .p256(let key): return Certificate.PrivateKey(key)
        case .p384(let key): return Certificate.PrivateKey(key)
        }
    }

    public var publicKey: Certificate.PublicKey { certificateKey.publicKey }

    public var signatureAlgorithm: Certificate.SignatureAlgorithm {
        switch self {
        case .p256: return .ecdsaWithSHA256
        case .p384: return .ecdsaWithSHA384
        }
    }

    /// An ASN.1 DER ECDSA signature over `digest` as given (not hashed again), as Go's
    /// `ecdsa.SignASN1` makes MarbleRun's manifest signature.
    public func signature<D: Digest>(forDigest digest: D) throws -> [UInt8] {
        switch self {
        case .p256(let key): return Array(try key.signature(for: digest).derRepresentation)
        case .p384(let key): return Array(try key.signature(for: digest).derRepresentation)
        }
    }

    /// PKCS #8 DER: the sealed form, and the `Private` part of templates.
    public var derRepresentation: [UInt8] {
        switch self {
        case .p256(let key): return Array(key.derRepresentation)
        case .p384(let key): return Array(key.derRepresentation)
        }
    }

    public init(derRepresentation der: [UInt8]) throws {
        if let key = try? P256.Signing.PrivateKey(derRepresentation: der) {
            self = .p256(key)
        } else {
            self = .p384(try P384.Signing.PrivateKey(derRepresentation: der))
        }
    }
}
