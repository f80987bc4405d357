import Attestation
import Crypto
import Foundation
import Store
import Synchronization

/// The Coordinator's view of its store: every record encrypted with the 32-byte data key
/// (AES-256-GCM) under a name the store cannot read (HMAC of the record's name). The plaintext
/// starts with the record's name, so the state can be re-encrypted under a new data key without
/// a list of names; the storage name, the version the store keeps the record at and a format tag
/// are the authenticated data, so records cannot be swapped and a ciphertext passes only at its
/// own version. The store sees ciphertext only.
///
/// Records that change are listed with their versions in a sealed ``RecordIndex`` that every
/// commit rewrites, so a record put back to an older ciphertext of itself, or deleted, is refused
/// when read and when the state is opened (``verifyRecords()``), also after a restart; records
/// written once (a marble's UUID, audit log entries) have no older ciphertext and are not listed.
/// Putting back the index together with every record changed since (the whole state as it was)
/// is not detected; see docs/threat-model.md.
struct SealedStore: Sendable {
    static let sealedDataKeyName = "sealed-data-key"
    static let formatTag = "marblerun-swift state v4"
    /// Storage names of records listed in the index, and of records written once.
    static let indexedPrefix = "k/"
    static let writeOncePrefix = "o/"
    static let recordPrefixes = [indexedPrefix, writeOncePrefix]
    /// The main index; with replicas, each activation count shard has an index of its own
    /// (`index/<shard>`), so replicas counting in different shards do not contend on one record.
    static let indexName = "index"
    static let indexNames = [indexName] + (0..<Coordinator.countShards).map { "index/\($0)" }

    /// The index that lists record `name`.
    static func indexName(forRecord name: String) -> String {
        let parts = name.split(separator: "/", maxSplits: 2)
        guard parts.count == 3, parts[0] == "count-shard", let shard = Int(parts[1]),
            (0..<Coordinator.countShards).contains(shard)
        else { return indexName }
        return "index/\(shard)"
    }

    let store: any StateStore
    private let dataKey: SymmetricKey
    /// The data key itself, which recovery shares are made of.
    let dataKeyBytes: [UInt8]
    private let nameKey: SymmetricKey
    /// The stored index as last read or written, shared by this store's copies.
    let index: IndexCache
    /// The storage names of the indexes (by index name), made once: commits and reads use them.
    private let indexKeys: [String: String]
    private let indexStorageNames: Set<String>

    init(store: any StateStore, dataKey: [UInt8]) {
        self.store = store
        self.dataKey = SymmetricKey(data: dataKey)
        dataKeyBytes = dataKey
        let names = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: dataKey), info: Array("marblerun-swift record names".utf8),
            outputByteCount: 32)
        nameKey = names
        index = IndexCache()
        indexKeys = Dictionary(uniqueKeysWithValues: Self.indexNames.map { ($0, Self.storageName($0, nameKey: names)) })
        indexStorageNames = Set(indexKeys.values)
    }

    /// Records that are written once and never changed or deleted, so never listed in the index.
    static func isWriteOnce(_ name: String) -> Bool {
        name.hasPrefix("uuid/") || (name.hasPrefix("log/") && name != AuditTrail.headName)
    }

    func storageName(_ name: String) -> String {
        indexKeys[name] ?? Self.storageName(name, nameKey: nameKey)
    }

    private static func storageName(_ name: String, nameKey: SymmetricKey) -> String {
        (isWriteOnce(name) ? writeOncePrefix : indexedPrefix)
            + Hex.encode(HMAC<SHA256>.authenticationCode(for: Array(name.utf8), using: nameKey))
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
    /// authenticate, is older than the index or a read before, or is listed but missing, is an
    /// error that names it, never treated as absent.
    func read(_ name: String) async throws(CoordinatorError) -> (bytes: [UInt8], version: Int64)? {
        let key = storageName(name)
        let indexed = key.hasPrefix(Self.indexedPrefix)
        let indexName = Self.indexName(forRecord: name)
        if indexed {
            index.register(key, in: indexName)
            try await loadIndex(indexName)
        }
        // A version known before the read began: a linearizable store cannot answer below it.
        let floor = indexed ? index.version(of: key) : nil
        let stored = try await fetch(key)
        guard let stored else {
            guard floor != nil else { return nil }
            // Listed but absent: deleted behind the Coordinator's back, unless another replica
            // moved the whole state to a new data key (new storage names, no index under this one).
            guard try await refreshIndex(indexName) else {
                throw CoordinatorError(
                    .conflict, "the state moved to a new data key while this request was processed; retry")
            }
            if index.version(of: key) != nil { throw Self.missing(name) }
            return nil
        }
        let record = try opened(stored, storageName: key, name: name)
        if let floor, stored.version < floor { throw Self.rolledBack(name) }
        if indexed { index.saw(key, at: stored.version) }
        return (record.contents, stored.version)
    }

    private func fetch(_ key: String) async throws(CoordinatorError) -> StoredValue? {
        do {
            return try await store.read(key)
        } catch {
            throw CoordinatorError(.storeUnavailable, "the state store failed: \(error.message)")
        }
    }

    /// The record `stored` as kept under `key`, which must be `name` (nil: any name).
    private func opened(_ stored: StoredValue, storageName key: String, name: String?) throws(CoordinatorError) -> (
        name: String, contents: [UInt8]
    ) {
        if let record = open(stored.bytes, storageName: key, version: stored.version),
            name == nil || record.name == name
        {
            return record
        }
        if let box = try? AES.GCM.SealedBox(combined: stored.bytes),
            ["marblerun-swift state v1|\(name ?? "core")", "marblerun-swift state v2|\(key)"]
                .map({ Array($0.utf8) }).contains(where: {
                    (try? AES.GCM.open(box, using: dataKey, authenticating: $0)) != nil
                })
                || (try? AES.GCM.open(
                    box, using: dataKey,
                    authenticating: Array("marblerun-swift state v3|k/\(key.dropFirst(2))|\(stored.version)".utf8)))
                    != nil
        {
            throw CoordinatorError(
                .sealedState,
                "the sealed state was written by an earlier development build (state format v1 to v3), which this Coordinator does not read; start with a new seal directory"
            )
        }
        throw CoordinatorError(
            .sealedState,
            "the sealed state record \"\(name ?? "index")\" is corrupt or was tampered with (it does not authenticate); refusing to use it"
        )
    }

    static func rolledBack(_ name: String) -> CoordinatorError {
        CoordinatorError(
            .sealedState,
            "the sealed state record \"\(name)\" was put back to an older version than the state's index or an earlier read lists (a rollback in the store); refusing to use it"
        )
    }

    static func missing(_ name: String) -> CoordinatorError {
        CoordinatorError(
            .sealedState,
            "the sealed state record \"\(name)\" is listed in the state's index but missing from the store (deleted behind the Coordinator's back); refusing to go on without it"
        )
    }

    private func loadIndex(_ name: String) async throws(CoordinatorError) {
        if !index.snapshot(name).loaded { _ = try await refreshIndex(name) }
    }

    /// Reads the stored index `name` again and adopts it; false if there is none under this data
    /// key. An index below the version already seen is a rollback.
    @discardableResult
    func refreshIndex(_ name: String = indexName) async throws(CoordinatorError) -> Bool {
        let key = storageName(name)
        let floor = index.snapshot(name).version
        guard let stored = try await fetch(key) else {
            // A main index gone is a state moved to a new data key (the caller finds out); a
            // count shard's index once seen goes only with the main one.
            if floor != nil, name != Self.indexName, try await fetch(storageName(Self.indexName)) != nil {
                throw Self.missing(name)
            }
            index.adopt(name, RecordIndex(), at: nil)
            return false
        }
        let record = try opened(stored, storageName: key, name: name)
        guard let decoded = RecordIndex.decode(record.contents) else {
            throw CoordinatorError(.sealedState, "the sealed state's index \(name) is malformed; refusing to use it")
        }
        if let floor, stored.version < floor { throw Self.rolledBack(name) }
        index.adopt(name, decoded, at: stored.version)
        return true
    }

    /// Checks every listed record against the indexes and the indexes against the records, as
    /// the state is opened: a record below its listed version (put back), a listed record missing
    /// (deleted), or a record that no index read after it lists at its version (an index put back)
    /// stops the Coordinator. Commits made meanwhile (replicas) write a record and its index
    /// entry at once, so an index read after a record lists it at least at the version read.
    func verifyRecords() async throws(CoordinatorError) {
        let listed = try await refreshIndexes()
        let keys: [String]
        do {
            keys = try await store.keys(withPrefix: Self.indexedPrefix).filter { !indexStorageNames.contains($0) }
        } catch {
            throw CoordinatorError(.storeUnavailable, "the state store failed: \(error.message)")
        }
        // Records newer than the indexes read before them, by storage name: version and name.
        var newer: [String: (version: Int64, name: String)] = [:]
        for key in keys {
            guard let stored = try await fetch(key) else { continue }
            let version = listed[key]
            if let version, stored.version == version { continue }
            let name = try opened(stored, storageName: key, name: nil).name
            if let version, stored.version < version { throw Self.rolledBack(name) }
            newer[key] = (stored.version, name)
        }
        let present = Set(keys)
        let absent = listed.keys.filter { !present.contains($0) }
        guard !newer.isEmpty || !absent.isEmpty else { return }
        let listedAfter = try await refreshIndexes()
        for (key, record) in newer where (listedAfter[key] ?? 0) < record.version {
            throw CoordinatorError(
                .sealedState,
                "the sealed state record \"\(record.name)\" is newer than the state's index (the index was put back to an older version); refusing to use it"
            )
        }
        for key in absent where listedAfter[key] != nil {
            // Written meanwhile under a name the listing missed, or gone for good.
            guard let stored = try await fetch(key) else {
                throw CoordinatorError(
                    .sealedState,
                    "a sealed state record listed in the state's index is missing from the store (deleted behind the Coordinator's back); refusing to use the state"
                )
            }
            if let version = listed[key], stored.version < version {
                throw Self.rolledBack(try opened(stored, storageName: key, name: nil).name)
            }
        }
    }

    /// Reads every index again, and returns what they list together; without a main index the
    /// state has none or moved to a new key.
    private func refreshIndexes() async throws(CoordinatorError) -> [String: Int64] {
        for name in Self.indexNames {
            guard try await refreshIndex(name) || name != Self.indexName else {
                throw CoordinatorError(
                    .sealedState,
                    "the sealed state has no index of its records (deleted, moved to a new key meanwhile, or written by an earlier development build); refusing to use it"
                )
            }
        }
        var listed: [String: Int64] = [:]
        for snapshot in index.snapshots.values { listed.merge(snapshot.index.versions) { max($0, $1) } }
        return listed
    }

    /// Writes that move every record to `newDataKey` (new storage names, new ciphertexts),
    /// except the records named in `replacing`, which the caller writes itself; and the store
    /// that reads them. Committed through the returned store, which writes the new index, in one
    /// commit, the old data key no longer opens anything.
    func rekeyWrites(to newDataKey: [UInt8], replacing: Set<String>) async throws(CoordinatorError) -> (
        writes: [StoreWrite], store: SealedStore
    ) {
        let next = SealedStore(store: store, dataKey: newDataKey)
        var writes: [StoreWrite] = []
        do {
            for prefix in Self.recordPrefixes {
                for key in try await store.keys(withPrefix: prefix) {
                    guard let stored = try await store.read(key) else { continue }
                    let record = try opened(stored, storageName: key, name: nil)
                    writes.append(StoreWrite(key: key, value: nil, expectedVersion: stored.version))
                    if !replacing.contains(record.name), !Self.indexNames.contains(record.name) {
                        writes.append(try next.write(record.name, record.contents, expectedVersion: nil))
                    }
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
        index.register(key, in: Self.indexName(forRecord: name))
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

    /// Commits `writes` together with the indexes they change. A conflict on an index alone
    /// (another commit moved it) is retried on the new index; any other conflict is the caller's.
    func commit(_ writes: [StoreWrite]) async throws(CoordinatorError) {
        var changes: [String: [StoreWrite]] = [:]
        for write in writes where !write.isCheck && write.key.hasPrefix(Self.indexedPrefix) {
            guard !indexStorageNames.contains(write.key) else { continue }
            changes[index.indexName(of: write.key), default: []].append(write)
        }
        for name in changes.keys { try await loadIndex(name) }
        for _ in 1...16 {
            var all = writes
            var written: [(name: String, index: RecordIndex, version: Int64)] = []
            for (name, listed) in changes.sorted(by: { $0.key < $1.key }) {
                let base = index.snapshot(name)
                var next = base.index
                for write in listed {
                    next.versions[write.key] = write.value == nil ? nil : (write.expectedVersion ?? 0) + 1
                }
                all.append(try self.write(name, next.encode(), expectedVersion: base.version))
                written.append((name, next, (base.version ?? 0) + 1))
            }
            do {
                try await store.commit(all)
                for entry in written { index.adopt(entry.name, entry.index, at: entry.version) }
                return
            } catch {
                guard error.code == .conflict else {
                    throw CoordinatorError(.storeUnavailable, "the state store failed: \(error.message)")
                }
                var moved = false
                for entry in written {
                    try await refreshIndex(entry.name)
                    if index.snapshot(entry.name).version != entry.version - 1 { moved = true }
                }
                if moved { continue }
                throw CoordinatorError(.conflict, "the state changed concurrently: \(error.message)")
            }
        }
        throw CoordinatorError(.conflict, "the state's index changed concurrently too often; retry")
    }
}
