import ArgumentParser
import Crypto
import Foundation
import PKCS11
import _CryptoExtras

/// A recovery holder's private key: it decrypts the holder's entry of RecoverySecrets
/// (RSA-OAEP-SHA256) and signs the share (RSASSA-PKCS1-v1_5, SHA-256), which is what the
/// Coordinator checks against the manifest's `RecoveryKeys`.
protocol RecoveryPrivateKey {
    /// The RSA modulus in bytes: the length of every ciphertext made for this key.
    var modulusLength: Int { get }
    func decrypt(_ ciphertext: [UInt8]) throws -> [UInt8]
    func signature(for message: [UInt8]) throws -> [UInt8]
}

/// A recovery key in a PEM file (PKCS #1 or PKCS #8).
struct FileRecoveryKey: RecoveryPrivateKey {
    let path: String
    private let key: _RSA.Encryption.PrivateKey

    init(path: String) throws {
        self.path = path
        guard let pem = FileManager.default.contents(atPath: path), pem.count <= 64 << 10,
            let key = try? _RSA.Encryption.PrivateKey(pemRepresentation: String(decoding: pem, as: UTF8.self))
        else { throw CLIError("cannot read the RSA private key \(path) (PEM, PKCS #1 or PKCS #8)") }
        self.key = key
    }

    var modulusLength: Int { key.keySizeInBits / 8 }

    func decrypt(_ ciphertext: [UInt8]) throws -> [UInt8] {
        guard let plain = try? key.decrypt(ciphertext, padding: .PKCS1_OAEP_SHA256) else {
            throw CLIError("the recovery secret does not decrypt with \(path): is it your entry of RecoverySecrets?")
        }
        return Array(plain)
    }

    func signature(for message: [UInt8]) throws -> [UInt8] {
        let signing = try _RSA.Signing.PrivateKey(derRepresentation: key.derRepresentation)
        return Array(try signing.signature(for: message, padding: .insecurePKCS1v1_5).rawRepresentation)
    }
}

/// MarbleRun's flags naming a recovery key: a PEM file (`-k`), or a key in a PKCS #11 token.
struct RecoveryKeyOptions: ParsableArguments {
    @Option(name: [.customShort("k"), .long], help: "Your recovery private key (RSA, PEM).")
    var key: String?

    @OptionGroup var token: TokenKeyOptions

    func validate() throws {
        if token.pkcs11Config != nil, key != nil {
            throw ValidationError("give either -k or --pkcs11-config, not both")
        }
    }

    /// The key the flags name, or nil when none is named.
    func load() throws -> (any RecoveryPrivateKey)? {
        if let configuration = token.pkcs11Config {
            return try TokenRecoveryKey(token: try openToken(configuration), selector: token.selector)
        }
        guard let key else { return nil }
        return try FileRecoveryKey(path: key)
    }

    func require() throws -> any RecoveryPrivateKey {
        guard let loaded = try load() else {
            throw CLIError(
                "name your recovery key: -k FILE, or --pkcs11-config FILE with --pkcs11-key-id or --pkcs11-key-label")
        }
        return loaded
    }
}

/// The files a recovery holder moves between machines: an entry of RecoverySecrets, a share
/// encrypted to the Coordinator's ephemeral key, a signature. Each is read raw or as base64.
enum RecoveryFile {
    /// The bytes in `path`: decoded when the file is base64 text, else as they are.
    static func read(_ path: String, what: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path), data.count <= 64 << 10 else {
            throw CLIError("cannot read \(what) \(path)")
        }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let bytes = Data(base64Encoded: text).map(Array.init) ?? Array(data)
        guard !bytes.isEmpty else { throw CLIError("\(what) \(path) is empty") }
        return bytes
    }

    /// Writes `bytes` raw to `path`, or prints them as base64 when no path is given.
    static func write(_ bytes: [UInt8], to path: String?) throws {
        guard let path else {
            print(Data(bytes).base64EncodedString())
            return
        }
        try output(bytes, to: path, mode: 0o600)
    }

    /// A recovery share is at most 64 bytes (32, or 33 with a threshold); an RSA ciphertext is
    /// as long as the key's modulus.
    static let maximumShareLength = 64

    /// The holder's share: `bytes` as they are when they are a share already, else decrypted
    /// with `key`.
    static func share(_ bytes: [UInt8], key: (any RecoveryPrivateKey)?) throws -> [UInt8] {
        if bytes.count <= maximumShareLength { return bytes }
        guard let key else {
            throw CLIError(
                "the recovery secret is encrypted (\(bytes.count) bytes): give your recovery key (-k) to decrypt it")
        }
        guard bytes.count == key.modulusLength else {
            throw CLIError(
                "the recovery secret is \(bytes.count) bytes: neither a share nor a ciphertext for this \(key.modulusLength * 8)-bit key"
            )
        }
        let share = try key.decrypt(bytes)
        guard share.count <= maximumShareLength else {
            throw CLIError("the recovery secret decrypts to \(share.count) bytes, which is not a recovery share")
        }
        return share
    }
}

/// MarbleRun's flags naming a private key in a PKCS #11 token: the token's configuration and
/// the key's id or label.
struct TokenKeyOptions: ParsableArguments {
    @Option(
        name: .customLong("pkcs11-config"),
        help: "A PKCS #11 configuration (JSON: Path, TokenLabel/TokenSerial/SlotNumber, Pin) whose token holds the key."
    )
    var pkcs11Config: String?

    @Option(name: .customLong("pkcs11-key-id"), help: "The private key's CKA_ID in the token (its text's bytes).")
    var pkcs11KeyID: String?

    @Option(name: .customLong("pkcs11-key-label"), help: "The private key's CKA_LABEL in the token.")
    var pkcs11KeyLabel: String?

    var selector: PKCS11Token.Selector { .init(id: pkcs11KeyID, label: pkcs11KeyLabel) }

    func validate() throws {
        if pkcs11Config != nil {
            guard pkcs11KeyID != nil || pkcs11KeyLabel != nil else {
                throw ValidationError("--pkcs11-config needs --pkcs11-key-id or --pkcs11-key-label")
            }
        } else if pkcs11KeyID != nil || pkcs11KeyLabel != nil {
            throw ValidationError("--pkcs11-key-id and --pkcs11-key-label need --pkcs11-config")
        }
    }
}
