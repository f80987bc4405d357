import Crypto
import Foundation

/// Seals with the SGX sealing keys Gramine exposes: `keys/_sgx_mrsigner` (the product key: the
/// enclave signer's, so an upgrade of the same signer and product unseals) and
/// `keys/_sgx_mrenclave` (the unique key: this enclave's measurement only), 16 bytes each, in
/// the attestation directory (`/dev/attestation` inside Gramine). The data key is sealed with
/// AES-256-GCM under a key derived from the hardware key by HKDF-SHA256 with a label naming the
/// mode, so the two keys never meet.
public struct GramineSealer: Sealer {
    public let directory: URL

    public init(directory: URL) { self.directory = directory }

    public var description: String { "SGX sealing keys from \(directory.path)/keys" }

    static func fileName(_ mode: SealMode) -> String {
        mode == .uniqueKey ? "_sgx_mrenclave" : "_sgx_mrsigner"
    }

    static func label(_ mode: SealMode) -> [UInt8] {
        Array("marblerun-swift data key sealing v1|\(mode.rawValue)".utf8)
    }

    /// The key-encryption key of `mode`, derived from the hardware key.
    func keyEncryptionKey(_ mode: SealMode) throws(CoordinatorError) -> SymmetricKey {
        let path = directory.appendingPathComponent("keys").appendingPathComponent(Self.fileName(mode)).path
        // Read to the end: pseudo-files may report size 0.
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw CoordinatorError(
                .sealedState, "cannot read the SGX \(mode.rawValue) sealing key \(path): is this a Gramine enclave?")
        }
        defer { try? handle.close() }
        let key = (try? handle.readToEnd()).map { Array($0) } ?? []
        guard key.count == 16 else {
            throw CoordinatorError(
                .sealedState, "the SGX sealing key \(path) has \(key.count) bytes, not 16: is this a Gramine enclave?")
        }
        return HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: key), info: Self.label(mode), outputByteCount: 32)
    }

    public func seal(_ dataKey: [UInt8], mode: SealMode) throws(CoordinatorError) -> [UInt8] {
        let key = try keyEncryptionKey(mode)
        do {
            return Array(try AES.GCM.seal(dataKey, using: key, authenticating: Self.label(mode)).combined!)
        } catch {
            throw CoordinatorError(.sealedState, "sealing the data key failed")
        }
    }

    public func unseal(_ sealed: [UInt8], mode: SealMode) throws(CoordinatorError) -> [UInt8] {
        let key = try keyEncryptionKey(mode)
        do {
            return Array(
                try AES.GCM.open(AES.GCM.SealedBox(combined: sealed), using: key, authenticating: Self.label(mode)))
        } catch {
            throw CoordinatorError(
                .sealedState,
                "cannot unseal the data key with this enclave's SGX \(mode.rawValue == "UniqueKey" ? "unique (MRENCLAVE)" : "product (MRSIGNER)") key: it was sealed by another enclave identity or machine, or changed"
            )
        }
    }
}
