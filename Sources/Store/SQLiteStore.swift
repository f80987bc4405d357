import Foundation
import SQLiteNIO

/// The embedded store: one SQLite file in WAL mode with `synchronous = FULL`, so a commit that
/// returned survives a crash or power loss. Calls run on SQLite-NIO's thread pool, never on
/// the caller's task or an event loop.
public actor SQLiteStore: StateStore {
    private let connection: SQLiteConnection
    public let path: String
    /// One operation at a time on the connection: actor methods interleave at every `await`,
    /// and a read must never see another commit's unfinished transaction.
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    private func exclusive<T>(_ body: () async throws(StoreError) -> T) async throws(StoreError) -> T {
        if busy {
            await withCheckedContinuation { waiting.append($0) }
        } else {
            busy = true
        }
        defer {
            if waiting.isEmpty { busy = false } else { waiting.removeFirst().resume() }
        }
        return try await body()
    }

    /// Opens (creating if needed) the database at `path`, readable by its owner only.
    public static func open(path: String) async throws(StoreError) -> SQLiteStore {
        do {
            try ownerOnly(path)
            let connection = try await SQLiteConnection.open(storage: .file(path: path))
            let store = SQLiteStore(connection: connection, path: path)
            do {
                try await store.prepare()
            } catch {
                // A connection must be closed before it goes away (SQLite-NIO asserts it).
                await store.close()
                throw error
            }
            return store
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.unavailable, "cannot open the state database \(path): \(error)")
        }
    }

    /// The database holds the sealed state: it is created 0600 (SQLite gives its WAL and
    /// shared-memory files the database's mode), and one an older version made 0644 is narrowed,
    /// with those files.
    private static func ownerOnly(_ path: String) throws {
        let manager = FileManager.default
        if !manager.fileExists(atPath: path) {
            guard manager.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                throw StoreError(.unavailable, "cannot create the state database \(path)")
            }
        }
        for suffix in ["", "-wal", "-shm"] where manager.fileExists(atPath: path + suffix) {
            try manager.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path + suffix)
        }
    }

    private init(connection: SQLiteConnection, path: String) {
        self.connection = connection
        self.path = path
    }

    private func prepare() async throws(StoreError) {
        try await execute("PRAGMA journal_mode = WAL")
        try await execute("PRAGMA synchronous = FULL")
        // SQLite's default page cache is 2 MiB, which 10,000 marbles' records outgrow: every
        // lookup of a UUID record then reads pages again. 32 MiB (used only as filled) holds
        // 100,000 marbles' records.
        try await execute("PRAGMA cache_size = -32768")
        try await execute(
            "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL, version INTEGER NOT NULL)"
        )
        let check: [SQLiteRow] = try await rows("PRAGMA quick_check")
        guard check.first?.column("quick_check")?.string == "ok" else {
            throw StoreError(.corrupt, "the state database \(path) fails SQLite's integrity check")
        }
    }

    public func read(_ key: String) async throws(StoreError) -> StoredValue? {
        try await exclusive { () async throws(StoreError) -> StoredValue? in try await readUnlocked(key) }
    }

    private func readUnlocked(_ key: String) async throws(StoreError) -> StoredValue? {
        let result: [SQLiteRow] = try await rows("SELECT value, version FROM kv WHERE key = ?", [.text(key)])
        guard let row = result.first else { return nil }
        guard case .blob(let buffer) = row.column("value"), let version = row.column("version")?.integer else {
            throw StoreError(.corrupt, "the stored row \(key) is malformed")
        }
        return StoredValue(bytes: Array(buffer.readableBytesView), version: Int64(version))
    }

    public func keys(withPrefix prefix: String) async throws(StoreError) -> [String] {
        try await exclusive { () async throws(StoreError) -> [String] in try await keysUnlocked(prefix) }
    }

    private func keysUnlocked(_ prefix: String) async throws(StoreError) -> [String] {
        let result: [SQLiteRow]
        if let upper = upperBound(ofPrefix: prefix) {
            // A range over the primary key: the records under a prefix, not a scan of every
            // record (100,000 marbles' UUID records made each listing at start-up a full scan).
            result = try await rows(
                "SELECT key FROM kv WHERE key >= ? AND key < ? ORDER BY key", [.text(prefix), .text(upper)])
        } else {
            // SQLite's substr counts characters (code points) in TEXT, not bytes.
            result = try await rows(
                "SELECT key FROM kv WHERE substr(key, 1, ?) = ? ORDER BY key",
                [.integer(prefix.unicodeScalars.count), .text(prefix)])
        }
        return result.compactMap { $0.column("key")?.string }
    }

    public func commit(_ writes: [StoreWrite]) async throws(StoreError) {
        try await exclusive { () async throws(StoreError) in try await commitUnlocked(writes) }
    }

    private func commitUnlocked(_ writes: [StoreWrite]) async throws(StoreError) {
        try await execute("BEGIN IMMEDIATE")
        do {
            for write in writes {
                let current: [SQLiteRow] = try await rows("SELECT version FROM kv WHERE key = ?", [.text(write.key)])
                let version = current.first?.column("version")?.integer.map(Int64.init)
                guard version == write.expectedVersion else {
                    throw StoreError(.conflict, "\(write.key) changed since it was read")
                }
                if write.isCheck { continue }
                if let value = write.value {
                    try await execute(
                        "INSERT INTO kv (key, value, version) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, version = excluded.version",
                        [.text(write.key), .blob(ByteBuffer(bytes: value)), .integer(Int((version ?? 0) + 1))])
                } else {
                    try await execute("DELETE FROM kv WHERE key = ?", [.text(write.key)])
                }
            }
            try await execute("COMMIT")
        } catch {
            try? await execute("ROLLBACK")
            if let error = error as? StoreError, error.code != .unavailable { throw error }
            let reason = (error as? StoreError)?.message ?? "the commit to \(path) failed: \(error)"
            throw StoreError(.unavailable, "\(reason); nothing was changed (rolled back)")
        }
    }

    public func close() async {
        try? await connection.close()
    }

    private func execute(_ sql: String, _ binds: [SQLiteData] = []) async throws(StoreError) {
        let _: [SQLiteRow] = try await rows(sql, binds)
    }

    private func rows(_ sql: String, _ binds: [SQLiteData] = []) async throws(StoreError) -> [SQLiteRow] {
        do {
            let result: [SQLiteRow] = try await connection.query(sql, binds)
            return result
        } catch {
            throw StoreError(.unavailable, "the state database \(path) failed: \(error)")
        }
    }
}
