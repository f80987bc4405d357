import Foundation
import Store
import Testing

/// The same behaviour from the embedded SQLite store and the memory store (PostgreSQL: PostgresStoreTests).
@Suite struct StoreTests {
    static func stores() async throws -> [(String, any StateStore)] {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("store-\(UUID().uuidString).sqlite")
            .path
        return [("memory", MemoryStore()), ("sqlite", try await SQLiteStore.open(path: path))]
    }

    @Test func theStoreContractHolds() async throws {
        for (name, store) in try await Self.stores() {
            try await Self.checkContract(store, name: name)
        }
    }

    /// Versions, atomic commits, conflicts that apply nothing, concurrent commits that all land.
    /// Closes the store.
    static func checkContract(_ store: any StateStore, name: String) async throws {
        #expect(try await store.read("a") == nil, "\(name)")
        try await store.commit([StoreWrite(key: "a", value: [1, 2], expectedVersion: nil)])
        #expect(try await store.read("a") == StoredValue(bytes: [1, 2], version: 1), "\(name)")
        try await store.commit([
            StoreWrite(key: "a", value: [3], expectedVersion: 1),
            StoreWrite(key: "b/x", value: [], expectedVersion: nil),
        ])
        #expect(try await store.read("a") == StoredValue(bytes: [3], version: 2), "\(name)")
        #expect(try await store.keys(withPrefix: "b/") == ["b/x"], "\(name)")
        try await store.commit([StoreWrite(key: "b/x", value: nil, expectedVersion: 1)])
        #expect(try await store.read("b/x") == nil, "\(name)")

        // A conflict anywhere in a commit applies none of it.
        await #expect {
            try await store.commit([
                StoreWrite(key: "new", value: [9], expectedVersion: nil),
                StoreWrite(key: "a", value: [4], expectedVersion: 7),
            ])
        } throws: { ($0 as? StoreError)?.code == .conflict }
        #expect(try await store.read("new") == nil, "\(name)")
        #expect(try await store.read("a")?.bytes == [3], "\(name)")
        await #expect(throws: StoreError.self) {
            try await store.commit([StoreWrite(key: "a", value: [5], expectedVersion: nil)])
        }
        await #expect(throws: StoreError.self) {
            try await store.commit([StoreWrite(key: "a", value: nil, expectedVersion: nil)])
        }
        #expect(try await store.read("a")?.bytes == [3], "\(name)")

        // A check writes nothing and holds the commit to the checked versions.
        try await store.commit([
            .check("a", at: 2), .check("absent", at: nil), StoreWrite(key: "c", value: [1], expectedVersion: nil),
        ])
        #expect(try await store.read("a") == StoredValue(bytes: [3], version: 2), "\(name)")
        #expect(try await store.read("absent") == nil, "\(name)")
        for stale in [StoreWrite.check("a", at: 1), .check("a", at: nil), .check("absent", at: 1)] {
            await #expect {
                try await store.commit([stale, StoreWrite(key: "c", value: [2], expectedVersion: 1)])
            } throws: { ($0 as? StoreError)?.code == .conflict }
        }
        #expect(try await store.read("c") == StoredValue(bytes: [1], version: 1), "\(name)")
        try await store.commit([StoreWrite(key: "c", value: nil, expectedVersion: 1)])

        // Keys are listed by byte prefix, in order; values up to a few MiB round-trip exactly.
        let big = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try await store.commit([
            StoreWrite(key: "p/b", value: big, expectedVersion: nil),
            StoreWrite(key: "p/a%", value: [0], expectedVersion: nil),
            StoreWrite(key: "p_", value: [0], expectedVersion: nil),
            // Just above every "p/…" key in byte order ("/" + 1), and a prefix that ends beyond ASCII.
            StoreWrite(key: "p0", value: [0], expectedVersion: nil),
            StoreWrite(key: "p/", value: [0], expectedVersion: nil),
            StoreWrite(key: "pé/x", value: [0], expectedVersion: nil),
            StoreWrite(key: "pê", value: [0], expectedVersion: nil),
        ])
        #expect(try await store.keys(withPrefix: "p/") == ["p/", "p/a%", "p/b"], "\(name)")
        #expect(try await store.keys(withPrefix: "pé") == ["pé/x"], "\(name)")
        #expect(try await store.keys(withPrefix: "p0") == ["p0"], "\(name)")
        #expect(try await store.read("p/b")?.bytes == big, "\(name)")

        await withTaskGroup(of: Void.self) { group in
            for index in 0..<50 {
                group.addTask {
                    try? await store.commit([StoreWrite(key: "k\(index)", value: [UInt8(index)], expectedVersion: nil)])
                }
            }
        }
        #expect(try await store.keys(withPrefix: "k").count == 50, "\(name)")
        await store.close()
    }

    @Test func sqliteKeepsCommittedDataAcrossReopen() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("store-\(UUID().uuidString).sqlite")
            .path
        let store = try await SQLiteStore.open(path: path)
        try await store.commit([StoreWrite(key: "state", value: Array(repeating: 7, count: 4096), expectedVersion: nil)]
        )
        await store.close()
        let reopened = try await SQLiteStore.open(path: path)
        #expect(try await reopened.read("state")?.bytes.count == 4096)
        await reopened.close()
    }

    /// The database and its WAL and shared-memory files hold the sealed state: only the owner may
    /// read them (0600), also when an older version created the database 0644.
    @Test func theDatabaseFilesAreTheOwnersOnly() async throws {
        func mode(_ path: String) throws -> Int {
            (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
        }
        for preexisting in [false, true] {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent(
                "store-\(UUID().uuidString).sqlite"
            )
            .path
            defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
            if preexisting {
                let old = try await SQLiteStore.open(path: path)
                await old.close()
                try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
            }
            let store = try await SQLiteStore.open(path: path)
            try await store.commit([StoreWrite(key: "state", value: [1, 2, 3], expectedVersion: nil)])
            for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
                #expect(
                    try mode(path + suffix) == 0o600,
                    "\(suffix.isEmpty ? "database" : suffix) (preexisting: \(preexisting))")
            }
            #expect(FileManager.default.fileExists(atPath: path + "-wal"), "the WAL exists while the store is open")
            await store.close()
        }
    }

    @Test func aFileThatIsNotADatabaseIsRefusedClearly() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("store-\(UUID().uuidString).sqlite")
            .path
        try Data(repeating: 0x41, count: 8192).write(to: URL(fileURLWithPath: path))
        await #expect {
            _ = try await SQLiteStore.open(path: path)
        } throws: { error in
            guard let error = error as? StoreError else { return false }
            return [StoreError.Code.unavailable, .corrupt].contains(error.code) && error.message.contains(path)
        }
    }
}
