import Crypto
import Foundation

/// The identity a simulated enclave reports, derived as SGX derives it: UniqueID measures the
/// code (here: SHA-256 of the executable), SignerID the signing key; ProductID,
/// SecurityVersion and Debug come from the signing configuration.
public struct SimulatedEnclave: Sendable, Hashable {
    public var uniqueID: [UInt8]
    public var signerID: [UInt8]
    public var productID: UInt16
    public var securityVersion: UInt16
    public var debug: Bool

    public init(
        uniqueID: [UInt8], signerID: [UInt8], productID: UInt16 = 0, securityVersion: UInt16 = 0, debug: Bool = false
    ) {
        self.uniqueID = uniqueID
        self.signerID = signerID
        self.productID = productID
        self.securityVersion = securityVersion
        self.debug = debug
    }

    /// The identity of `executable` signed by `signer`.
    public static func measuring(executable: URL, signer: EnclaveSigner) throws(AttestationError) -> SimulatedEnclave {
        SimulatedEnclave(
            uniqueID: try uniqueID(of: executable), signerID: signer.signerID, productID: signer.productID,
            securityVersion: signer.securityVersion, debug: signer.debug)
    }

    /// SHA-256 of the file's bytes, read in 1 MiB pieces.
    public static func uniqueID(of executable: URL) throws(AttestationError) -> [UInt8] {
        guard let handle = try? FileHandle(forReadingFrom: executable) else {
            throw AttestationError(.policy, "cannot read \(executable.path) to measure it")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try? handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            hasher.update(data: chunk)
        }
        return Array(hasher.finalize())
    }
}

/// A simulated enclave signing configuration: the key whose hash is the SignerID, and the
/// values an enclave's SIGSTRUCT carries.
public struct EnclaveSigner: Sendable {
    public var signingKey: P256.Signing.PrivateKey
    public var productID: UInt16
    public var securityVersion: UInt16
    public var debug: Bool

    public init(
        signingKey: P256.Signing.PrivateKey, productID: UInt16 = 0, securityVersion: UInt16 = 0, debug: Bool = false
    ) {
        self.signingKey = signingKey
        self.productID = productID
        self.securityVersion = securityVersion
        self.debug = debug
    }

    /// SHA-256 of the signing key's public key (x‖y), as MRSIGNER hashes the signer's modulus.
    public var signerID: [UInt8] { Array(SHA256.hash(data: signingKey.publicKey.rawRepresentation)) }

    /// Reads a signing configuration: `{"SigningKey": "key.pem", "ProductID": 1, "SecurityVersion": 2, "Debug": false}`;
    /// a relative key path is relative to the configuration file.
    public static func load(configuration file: URL) throws(AttestationError) -> EnclaveSigner {
        struct Config: Decodable {
            var SigningKey: String
            var ProductID: UInt16?
            var SecurityVersion: UInt16?
            var Debug: Bool?
        }
        do {
            let config = try JSONDecoder().decode(Config.self, from: Data(contentsOf: file))
            let keyURL = URL(fileURLWithPath: config.SigningKey, relativeTo: file.deletingLastPathComponent())
            let key = try P256.Signing.PrivateKey(
                pemRepresentation: String(decoding: Data(contentsOf: keyURL), as: UTF8.self))
            return EnclaveSigner(
                signingKey: key, productID: config.ProductID ?? 0, securityVersion: config.SecurityVersion ?? 0,
                debug: config.Debug ?? false)
        } catch {
            throw AttestationError(.policy, "cannot read the signing configuration \(file.path): \(error)")
        }
    }
}
