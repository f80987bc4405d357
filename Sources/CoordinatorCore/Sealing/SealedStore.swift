import Attestation
import Crypto
import Foundation
import Store

/// The Coordinator's view of its store: every record encrypted with the 32-byte data key
/// (AES-256-GCM, the record's name and a format tag as authenticated data) under a name the
/// store cannot read (HMAC of the record's name). The store sees ciphertext only.
struct SealedStore: Sendable {
    static let sealedDataKeyName = "sealed-data-key"
    static let formatTag = "marblerun-swift state v1"

    let store: any StateStore
    private let dataKey: SymmetricKey
    /// The data key itself, which recovery shares are made of.
    let dataKeyBytes: [UInt8]
    private let nameKey: SymmetricKey

    init(store: any StateStore, dataKey: [UInt8]) {
        self.store = store
        self.dataKey = SymmetricKey(data: dataKey)
        dataKeyBytes = dataKey
        nameKey = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: dataKey), info: Array("marblerun-swift record names".utf8),
            outputByteCount: 32)
    }

    func storageName(_ name: String) -> String {
        "k/" + Hex.encode(HMAC<SHA256>.authenticationCode(for: Array(name.utf8), using: nameKey))
    }

    private func associatedData(_ name: String) -> [UInt8] { Array("\(Self.formatTag)|\(name)".utf8) }

    /// The decrypted record and its version, nil if absent; a record that does not
    /// authenticate is an error that names it, never treated as absent.
    func read(_ name: String) async throws(CoordinatorError) -> (bytes: [UInt8], version: Int64)? {
        let stored: StoredValue?
        do {
            stored = try await store.read(storageName(name))
        } catch {
            throw CoordinatorError(.storeUnavailable, "the state store failed: \(error.message)")
        }
        guard let stored else { return nil }
        do {
            let box = try AES.GCM.SealedBox(combined: stored.bytes)
            return (Array(try AES.GCM.open(box, using: dataKey, authenticating: associatedData(name))), stored.version)
        } catch {
            throw CoordinatorError(
                .sealedState,
                "the sealed state record \"\(name)\" is corrupt or was tampered with (it does not authenticate); refusing to use it"
            )
        }
    }

    /// A write of `bytes` to record `name`, expected at `version` (nil: new).
    func write(_ name: String, _ bytes: [UInt8], expectedVersion: Int64?) throws(CoordinatorError) -> StoreWrite {
        do {
            let sealed = try AES.GCM.seal(bytes, using: dataKey, authenticating: associatedData(name))
            return StoreWrite(key: storageName(name), value: Array(sealed.combined!), expectedVersion: expectedVersion)
        } catch {
            throw CoordinatorError(.internalFailure, "encrypting the state failed")
        }
    }

    func commit(_ writes: [StoreWrite]) async throws(CoordinatorError) {
        do {
            try await store.commit(writes)
        } catch {
            if error.code == .conflict {
                throw CoordinatorError(.conflict, "the state changed concurrently: \(error.message)")
            }
            throw CoordinatorError(.storeUnavailable, "the state store failed: \(error.message); nothing was changed")
        }
    }
}
