import Attestation
import Synchronization

/// The version of every record that changes (storage name → version), kept as one sealed
/// record that each commit rewrites with the records it writes. Bound to its own version like
/// every record, it is the authenticated list a record put back to an older ciphertext of itself
/// (or deleted) is caught against, also by a Coordinator that never read the record before: at
/// start, on every read, and by a replica reading what another replica wrote.
///
/// Encoded as a 4-byte big-endian count, then per record its 32-byte storage name (without the
/// `k/` prefix) and its 8-byte big-endian version, in storage-name order.
struct RecordIndex: Sendable, Hashable {
    var versions: [String: Int64]
    /// The names in storage-name order with their 32-byte forms, as last encoded or decoded: a
    /// commit changes versions far more often than the set of names, and sorting and decoding
    /// a thousand names on every commit was a cost of each group commit.
    private var layout: Layout?

    private final class Layout: Sendable {
        let entries: [(key: String, name: [UInt8])]
        init(_ entries: [(key: String, name: [UInt8])]) { self.entries = entries }
    }

    init(_ versions: [String: Int64] = [:]) { self.versions = versions }

    static func == (lhs: Self, rhs: Self) -> Bool { lhs.versions == rhs.versions }
    func hash(into hasher: inout Hasher) { hasher.combine(versions) }

    func encoded() -> [UInt8] {
        var copy = self
        return copy.encode()
    }

    /// As ``encoded()``, keeping the order for the next encoding.
    mutating func encode() -> [UInt8] {
        if let layout, let bytes = Self.encode(versions, in: layout.entries) { return bytes }
        let entries = versions.keys.sorted().map { key in
            (key: key, name: Hex.decode(String(key.dropFirst(SealedStore.indexedPrefix.count))) ?? [])
        }
        layout = Layout(entries)
        return Self.encode(versions, in: entries)!
    }

    /// `versions` in the order of `entries`; nil unless `entries` lists exactly their names
    /// (as many, each present).
    private static func encode(_ versions: [String: Int64], in entries: [(key: String, name: [UInt8])]) -> [UInt8]? {
        guard entries.count == versions.count else { return nil }
        var bytes = withUnsafeBytes(of: UInt32(versions.count).bigEndian) { Array($0) }
        bytes.reserveCapacity(4 + versions.count * 40)
        for entry in entries {
            guard let version = versions[entry.key] else { return nil }
            bytes += entry.name
            bytes += withUnsafeBytes(of: version.bigEndian) { Array($0) }
        }
        return bytes
    }

    /// The index in `bytes`; nil unless they are exactly one well-formed index (names in strictly
    /// increasing order, versions from 1).
    static func decode(_ bytes: [UInt8]) -> RecordIndex? {
        guard bytes.count >= 4 else { return nil }
        let count = bytes[0..<4].reduce(0) { $0 << 8 | Int($1) }
        guard bytes.count == 4 + count * 40 else { return nil }
        var versions: [String: Int64] = [:]
        versions.reserveCapacity(count)
        var entries: [(key: String, name: [UInt8])] = []
        entries.reserveCapacity(count)
        var previous = ""
        for entry in 0..<count {
            let start = 4 + entry * 40
            let name = Array(bytes[start..<(start + 32)])
            let key = SealedStore.indexedPrefix + Hex.encode(name)
            let version = bytes[(start + 32)..<(start + 40)].reduce(Int64(0)) { $0 << 8 | Int64($1) }
            guard key > previous, version >= 1 else { return nil }
            versions[key] = version
            entries.append((key, name))
            previous = key
        }
        var index = RecordIndex(versions)
        index.layout = Layout(entries)
        return index
    }
}

/// What one ``SealedStore`` (and its copies) knows of the stored indexes (the main one and the
/// count-shard ones, by record name): each one's version when last read or written, and each
/// listed record's version, raised by reads that found a newer one.
final class IndexCache: Sendable {
    struct Snapshot: Sendable {
        /// False until the index was first read or written.
        var loaded = false
        /// The index record's version; nil when no such index is stored.
        var version: Int64?
        var index = RecordIndex()
    }

    private struct State {
        var snapshots: [String: Snapshot] = [:]
        /// The index of each storage name not in the main one.
        var indexOf: [String: String] = [:]
    }

    private let state = Mutex(State())

    func snapshot(_ name: String) -> Snapshot { state.withLock { $0.snapshots[name] ?? Snapshot() } }

    /// Every index this cache has adopted, by name.
    var snapshots: [String: Snapshot] { state.withLock { $0.snapshots } }

    /// The index that lists storage name `key` (``SealedStore/indexName`` unless registered).
    func indexName(of key: String) -> String { state.withLock { $0.indexOf[key] } ?? SealedStore.indexName }

    func register(_ key: String, in indexName: String) {
        guard indexName != SealedStore.indexName else { return }
        state.withLock { $0.indexOf[key] = indexName }
    }

    func version(of key: String) -> Int64? {
        state.withLock { state in
            state.snapshots[state.indexOf[key] ?? SealedStore.indexName]?.index.versions[key]
        }
    }

    /// A read found `key` at `version`: later reads must not find it lower.
    func saw(_ key: String, at version: Int64) {
        state.withLock { state in
            let name = state.indexOf[key] ?? SealedStore.indexName
            var snapshot = state.snapshots[name] ?? Snapshot()
            snapshot.index.versions[key] = max(snapshot.index.versions[key] ?? 0, version)
            state.snapshots[name] = snapshot
        }
    }

    /// Adopts index `name` read or written at `version`, unless a newer one was adopted meanwhile.
    func adopt(_ name: String, _ index: RecordIndex, at version: Int64?) {
        state.withLock { state in
            if let current = state.snapshots[name], current.loaded, let known = current.version, (version ?? 0) < known
            {
                return
            }
            state.snapshots[name] = Snapshot(loaded: true, version: version, index: index)
        }
    }
}
