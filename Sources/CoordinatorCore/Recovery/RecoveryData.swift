import Crypto
import Foundation
import JSONText
import Manifest
import Store
import _CryptoExtras

/// What recovery needs while the state cannot be read, stored in plaintext beside it: the
/// manifest's recovery keys (their public halves verify the signatures on shares), how the
/// shares combine, and a MAC under the data key. Whoever controls the store can change this
/// record, but only to make recovery fail: the reconstructed data key must open the sealed
/// state and verify the MAC before anything is trusted.
struct RecoveryData: Sendable, Hashable {
    static let storeKey = "recovery-data"

    enum Mode: String, Sendable {
        /// One recovery key: its share is the data key itself.
        case single
        /// Every key holds a share; the data key is their XOR.
        case xor
        /// Any `threshold` shares give the data key (``Shamir``).
        case shamir
    }

    /// Recovery key name → PKIX DER of its RSA public key.
    var keys: [String: [UInt8]]
    var mode: Mode
    var threshold: Int
    var mac: [UInt8]

    /// Shares needed to recover.
    var needed: Int {
        switch mode {
        case .single: return 1
        case .xor: return keys.count
        case .shamir: return threshold
        }
    }

    /// Length in bytes of one share.
    var shareLength: Int { mode == .shamir ? 33 : 32 }

    /// Shares of `dataKey` for the manifest's recovery keys (name → PEM RSA public key), each
    /// encrypted to its key with RSA-OAEP-SHA256: the `RecoverySecrets` users keep. Nil when the
    /// manifest has no recovery keys.
    static func make(dataKey: [UInt8], recoveryKeys: [String: String], threshold: UInt64) throws(CoordinatorError)
        -> (data: RecoveryData, secrets: [String: [UInt8]])?
    {
        guard !recoveryKeys.isEmpty else { return nil }
        let names = recoveryKeys.keys.sorted()
        var publicKeys: [String: _RSA.Encryption.PublicKey] = [:]
        for name in names {
            guard let key = try? _RSA.Encryption.PublicKey(pemRepresentation: recoveryKeys[name]!) else {
                throw CoordinatorError(.invalidManifest, "RecoveryKeys.\(name) is not a PEM RSA public key")
            }
            publicKeys[name] = key
        }
        let count = names.count
        let mode: Mode = count == 1 ? .single : (threshold == 0 || Int(threshold) >= count ? .xor : .shamir)
        var shares: [[UInt8]]
        switch mode {
        case .single:
            shares = [dataKey]
        case .xor:
            shares = (1..<count).map { _ in SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) } }
            shares.append(shares.reduce(dataKey) { xor($0, $1) })
        case .shamir:
            do {
                shares = try Shamir.split(dataKey, count: count, threshold: Int(threshold))
            } catch {
                throw CoordinatorError(.invalidManifest, "cannot split the recovery secret: \(error.description)")
            }
        }
        var secrets: [String: [UInt8]] = [:]
        for (name, share) in zip(names, shares) {
            do {
                secrets[name] = Array(try publicKeys[name]!.encrypt(share, padding: .PKCS1_OAEP_SHA256))
            } catch {
                throw CoordinatorError(.invalidManifest, "cannot encrypt the recovery secret to RecoveryKeys.\(name)")
            }
        }
        var data = RecoveryData(
            keys: publicKeys.mapValues { Array($0.derRepresentation) }, mode: mode,
            threshold: mode == .shamir ? Int(threshold) : count, mac: [])
        data.mac = data.expectedMAC(dataKey: dataKey)
        return (data, secrets)
    }

    static func xor(_ a: [UInt8], _ b: [UInt8]) -> [UInt8] { zip(a, b).map { $0 ^ $1 } }

    /// HMAC-SHA256 under a key derived from the data key, over the canonical JSON of the rest.
    private func expectedMAC(dataKey: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: unsignedJSON, using: Self.macKey(dataKey)))
    }

    /// Whether `dataKey` is the key this record was made with (constant-time MAC check).
    func isAuthentic(dataKey: [UInt8]) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: unsignedJSON, using: Self.macKey(dataKey))
    }

    private static func macKey(_ dataKey: [UInt8]) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: dataKey), info: Array("marblerun-swift recovery data".utf8),
            outputByteCount: 32)
    }

    private var unsignedMembers: [JSONMember] {
        [
            JSONMember("format", .number("1")),
            JSONMember("keys", .object(keys.map { JSONMember($0.key, .string(Data($0.value).base64EncodedString())) })),
            JSONMember("mode", .string(mode.rawValue)),
            JSONMember("threshold", .number(String(threshold))),
        ]
    }

    private var unsignedJSON: [UInt8] { JSONValue.object(unsignedMembers).serialized() }

    func encoded() -> [UInt8] {
        JSONValue.object(unsignedMembers + [JSONMember("mac", .string(Data(mac).base64EncodedString()))]).serialized()
    }

    /// Parses the stored record; a malformed one is reported, never guessed at.
    static func decode(_ bytes: [UInt8]) throws(CoordinatorError) -> RecoveryData {
        func malformed() -> CoordinatorError {
            CoordinatorError(.sealedState, "the stored recovery data is malformed; recovery is impossible")
        }
        guard case .object(let members)? = try? JSONParser().parse(bytes) else { throw malformed() }
        var fields: [String: JSONValue] = [:]
        for member in members { fields[member.key] = member.value }
        guard case .number("1") = fields["format"], case .object(let keyMembers) = fields["keys"],
            case .string(let modeText) = fields["mode"], let mode = Mode(rawValue: modeText),
            case .number(let thresholdText) = fields["threshold"], let threshold = Int(thresholdText),
            case .string(let macText) = fields["mac"], let mac = Data(base64Encoded: macText)
        else { throw malformed() }
        var keys: [String: [UInt8]] = [:]
        for member in keyMembers {
            guard case .string(let text) = member.value, let der = Data(base64Encoded: text) else { throw malformed() }
            keys[member.key] = Array(der)
        }
        guard !keys.isEmpty, (1...keys.count).contains(threshold) else { throw malformed() }
        return RecoveryData(keys: keys, mode: mode, threshold: threshold, mac: Array(mac))
    }
}

extension Coordinator {
    /// The write that stores the recovery data of `manifest` (or removes it when the manifest
    /// has no recovery keys) and the shares to hand out.
    func recoveryData(for manifest: Manifest, dataKey: [UInt8]? = nil) async throws(CoordinatorError) -> (
        writes: [StoreWrite], secrets: [String: [UInt8]]
    ) {
        let current: StoredValue?
        do {
            current = try await sealed.store.read(RecoveryData.storeKey)
        } catch {
            throw CoordinatorError(.storeUnavailable, "the state store failed: \(error.message)")
        }
        guard
            let made = try RecoveryData.make(
                dataKey: dataKey ?? sealed.dataKeyBytes, recoveryKeys: manifest.recoveryKeys,
                threshold: manifest.config.recoveryThreshold)
        else {
            let removal = current.map {
                [StoreWrite(key: RecoveryData.storeKey, value: nil, expectedVersion: $0.version)]
            }
            return (removal ?? [], [:])
        }
        return (
            [StoreWrite(key: RecoveryData.storeKey, value: made.data.encoded(), expectedVersion: current?.version)],
            made.secrets
        )
    }
}
