import Attestation
import Crypto
import Foundation
import Store
import Synchronization

/// The Coordinator's view of its store: every record encrypted with the 32-byte data key
/// (AES-256-GCM) under a name the store cannot read (HMAC of the record's name). The plaintext
/// starts with the record's name, so the state can be re-encrypted under a new data key without
/// a list of names; the storage name and a format tag are the authenticated data, so records
/// cannot be swapped. The store sees ciphertext only.
///
/// Each ciphertext is also bound to the version the store keeps it at (part of the
/// authenticated data), and every version this Coordinator saw or wrote is remembered: a record
/// put back to an older ciphertext of itself, with its older version, is refused when read.
/// (Across a restart nothing is remembered yet; see docs/threat-model.md.)
struct SealedStore: Sendable {
    static let sealedDataKeyName = "sealed-data-key"
    static let formatTag = "marblerun-swift state v3"

    let store: any StateStore
    private let dataKey: SymmetricKey
    /// The data key itself, which recovery shares are made of.
    let dataKeyBytes: [UInt8]
    private let nameKey: SymmetricKey
    /// The highest version of each record (storage name) read or committed through this store.
    let versions: VersionLedger

    init(store: any StateStore, dataKey: [UInt8]) {
        self.store = store
        self.dataKey = SymmetricKey(data: dataKey)
        dataKeyBytes = dataKey
        nameKey = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: dataKey), info: Array("marblerun-swift record names".utf8),
            outputByteCount: 32)
        versions = VersionLedger()
    }

    func storageName(_ name: String) -> String {
        "k/" + Hex.encode(HMAC<SHA256>.authenticationCode(for: Array(name.utf8), using: nameKey))
    }

    private func associatedData(storageName: String, version: Int64) -> [UInt8] {
        Array("\(Self.formatTag)|\(storageName)|\(version)".utf8)
    }

    /// The name and contents of a stored record, authenticated under its storage name and the
    /// version the store holds it at.
    func open(_ bytes: [UInt8], storageName: String, version: Int64) -> (name: String, contents: [UInt8])? {
        guard let box = try? AES.GCM.SealedBox(combined: bytes),
            let plain = try? Array(
                AES.GCM.open(
                    box, using: dataKey, authenticating: associatedData(storageName: storageName, version: version))),
            plain.count >= 2
        else { return nil }
        let length = Int(plain[0]) << 8 | Int(plain[1])
        guard plain.count >= 2 + length else { return nil }
        return (String(decoding: plain[2..<(2 + length)], as: UTF8.self), Array(plain[(2 + length)...]))
    }

    /// The decrypted record and its version, nil if absent; a record that does not
    /// authenticate is an error that names it, never treated as absent.
    func read(_ name: String) async throws(CoordinatorError) -> (bytes: [UInt8], version: Int64)? {
        let key = storageName(name)
        // A version known before the read began: a linearizable store cannot answer below it.
        let floor = versions.version(of: key)
        let stored: StoredValue?
        do {
            stored = try await store.read(key)
        } catch {
            throw CoordinatorError(.storeUnavailable, "the state store failed: \(error.message)")
        }
        // Absent is not an older ciphertext: another replica may have moved the state to a new
        // data key (new storage names), which the caller then looks for.
        guard let stored else { return nil }
        guard let record = open(stored.bytes, storageName: key, version: stored.version), record.name == name else {
            if let box = try? AES.GCM.SealedBox(combined: stored.bytes),
                (try? AES.GCM.open(box, using: dataKey, authenticating: Array("marblerun-swift state v1|\(name)".utf8)))
                    != nil
                    || (try? AES.GCM.open(
                        box, using: dataKey, authenticating: Array("marblerun-swift state v2|\(key)".utf8))) != nil
            {
                throw CoordinatorError(
                    .sealedState,
                    "the sealed state was written by an earlier development build (state format v1), which this Coordinator does not read; start with a new seal directory"
                )
            }
            throw CoordinatorError(
                .sealedState,
                "the sealed state record \"\(name)\" is corrupt or was tampered with (it does not authenticate); refusing to use it"
            )
        }
        if let floor, stored.version < floor { throw Self.rolledBack(name) }
        versions.saw(key, at: stored.version)
        return (record.contents, stored.version)
    }

    static func rolledBack(_ name: String) -> CoordinatorError {
        CoordinatorError(
            .sealedState,
            "the sealed state record \"\(name)\" was put back to an older version than this Coordinator already read or wrote (a rollback in the store); refusing to use it"
        )
    }

    /// Writes that move every record to `newDataKey` (new storage names, new ciphertexts),
    /// except the records named in `replacing`, which the caller writes itself; and the store
    /// that reads them. Applied in one commit, the old data key no longer opens anything.
    func rekeyWrites(to newDataKey: [UInt8], replacing: Set<String>) async throws(CoordinatorError) -> (
        writes: [StoreWrite], store: SealedStore
    ) {
        let next = SealedStore(store: store, dataKey: newDataKey)
        var writes: [StoreWrite] = []
        do {
            for key in try await store.keys(withPrefix: "k/") {
                guard let stored = try await store.read(key) else { continue }
                guard let record = open(stored.bytes, storageName: key, version: stored.version) else {
                    throw CoordinatorError(
                        .sealedState, "a sealed state record does not authenticate; refusing to re-encrypt the state")
                }
                writes.append(StoreWrite(key: key, value: nil, expectedVersion: stored.version))
                if !replacing.contains(record.name) {
                    writes.append(try next.write(record.name, record.contents, expectedVersion: nil))
                }
            }
        } catch let error as CoordinatorError {
            throw error
        } catch {
            throw CoordinatorError(.storeUnavailable, "the state store failed while re-encrypting the state")
        }
        return (writes, next)
    }

    /// A write of `bytes` to record `name`, expected at `version` (nil: new).
    func write(_ name: String, _ bytes: [UInt8], expectedVersion: Int64?) throws(CoordinatorError) -> StoreWrite {
        let key = storageName(name)
        let nameBytes = Array(name.utf8)
        guard nameBytes.count <= 0xFFFF else { throw CoordinatorError(.internalFailure, "a record name is too long") }
        do {
            let plain = [UInt8(nameBytes.count >> 8), UInt8(nameBytes.count & 0xFF)] + nameBytes + bytes
            // The version the store will give this value: one above the expected one.
            let sealed = try AES.GCM.seal(
                plain, using: dataKey,
                authenticating: associatedData(storageName: key, version: (expectedVersion ?? 0) + 1))
            return StoreWrite(key: key, value: Array(sealed.combined!), expectedVersion: expectedVersion)
        } catch {
            throw CoordinatorError(.internalFailure, "encrypting the state failed")
        }
    }

    func commit(_ writes: [StoreWrite]) async throws(CoordinatorError) {
        do {
            try await store.commit(writes)
            for write in writes where !write.isCheck && write.key.hasPrefix("k/") {
                if write.value != nil {
                    versions.saw(write.key, at: (write.expectedVersion ?? 0) + 1)
                } else {
                    versions.forget(write.key)
                }
            }
        } catch {
            if error.code == .conflict {
                throw CoordinatorError(.conflict, "the state changed concurrently: \(error.message)")
            }
            throw CoordinatorError(.storeUnavailable, "the state store failed: \(error.message)")
        }
    }
}

/// The highest version of each record seen through one ``SealedStore`` (shared by its copies).
/// Only versions from 2 on are kept: a record at version 1 has no older ciphertext of itself, so
/// the write-once records (a UUID per marble, log entries) cost nothing here.
final class VersionLedger: Sendable {
    private let known = Mutex<[String: Int64]>([:])

    func version(of key: String) -> Int64? { known.withLock { $0[key] } }

    func saw(_ key: String, at version: Int64) {
        guard version >= 2 else { return }
        known.withLock { $0[key] = max($0[key] ?? 0, version) }
    }

    func forget(_ key: String) { _ = known.withLock { $0.removeValue(forKey: key) } }
}
