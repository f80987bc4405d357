import Crypto
import Foundation
import X509
import _CryptoExtras

/// Self-signed certificates and keys made on the fly for tests, so no key material is committed.
public enum TestCertificates {
    /// A self-signed P-256 certificate in PEM, for `key` or a new one.
    public static func ecdsa(commonName: String, key: P256.Signing.PrivateKey = P256.Signing.PrivateKey()) throws
        -> String
    {
        return try selfSigned(commonName: commonName, key: Certificate.PrivateKey(key), algorithm: .ecdsaWithSHA256)
    }

    /// A self-signed RSA certificate in PEM; sizes below 2048 use the "unsafe" generator on purpose.
    public static func rsa(commonName: String, bits: Int) throws -> String {
        let key =
            bits >= 2048
            ? try _RSA.Signing.PrivateKey(keySize: .init(bitCount: bits))
            : try _RSA.Signing.PrivateKey(unsafeKeySize: .init(bitCount: bits))
        return try selfSigned(
            commonName: commonName, key: Certificate.PrivateKey(key), algorithm: .sha256WithRSAEncryption)
    }

    /// An RSA public key in PEM (`-----BEGIN PUBLIC KEY-----`), as MarbleRun's RecoveryKeys hold.
    public static func rsaPublicKey(bits: Int) throws -> String {
        let key =
            bits >= 2048
            ? try _RSA.Encryption.PrivateKey(keySize: .init(bitCount: bits))
            : try _RSA.Encryption.PrivateKey(unsafeKeySize: .init(bitCount: bits))
        return key.publicKey.pemRepresentation
    }

    private static func selfSigned(
        commonName: String, key: Certificate.PrivateKey, algorithm: Certificate.SignatureAlgorithm
    ) throws -> String {
        let name = try DistinguishedName { CommonName(commonName) }
        let now = Date()
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: key.publicKey,
            notValidBefore: now.addingTimeInterval(-60),
            notValidAfter: now.addingTimeInterval(86_400 * 365),
            issuer: name,
            subject: name,
            signatureAlgorithm: algorithm,
            extensions: Certificate.Extensions {},
            issuerPrivateKey: key
        )
        return try certificate.serializeAsPEM().pemString
    }
}

/// The shared sample manifests made valid the way `../shared/testdata/README.md` describes.
public enum SampleManifests {
    /// `sample-manifest.json` with real PEM certificates in place of "cert-alice", "cert-bob", "cert-admin".
    public static func sampleWithCertificates() throws -> [UInt8] {
        var text = try TestData.text("manifests/sample-manifest.json")
        for user in ["alice", "bob", "admin"] {
            let pem = try TestCertificates.ecdsa(commonName: user)
            text = text.replacingOccurrences(of: "\"cert-\(user)\"", with: jsonString(pem))
        }
        return Array(text.utf8)
    }

    /// A sample with every `<replace with …>` UniqueID placeholder set to 64 hex digits.
    public static func withUniqueID(_ name: String, uniqueID: String = String(repeating: "ab", count: 32)) throws
        -> [UInt8]
    {
        let text = try TestData.text("manifests/\(name)")
        let pattern = try NSRegularExpression(pattern: "\"<replace with[^\"]*>\"")
        let replaced = pattern.stringByReplacingMatches(
            in: text, range: NSRange(text.startIndex..., in: text), withTemplate: "\"\(uniqueID)\"")
        return Array(replaced.utf8)
    }

    /// A JSON string literal for arbitrary text.
    public static func jsonString(_ text: String) -> String {
        let data = try! JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])
        let array = String(decoding: data, as: UTF8.self)
        return String(array.dropFirst().dropLast())
    }
}
