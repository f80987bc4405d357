import Foundation
import Store
import Testing

/// The same behaviour from the embedded SQLite store and the memory store.
@Suite struct StoreTests {
    static func stores() async throws -> [(String, any StateStore)] {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("store-\(UUID().uuidString).sqlite")
            .path
        return [("memory", MemoryStore()), ("sqlite", try await SQLiteStore.open(path: path))]
    }

    @Test func writesReadsAndVersions() async throws {
        for (name, store) in try await Self.stores() {
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
            await store.close()
        }
    }

    @Test func aConflictAppliesNothing() async throws {
        for (name, store) in try await Self.stores() {
            try await store.commit([StoreWrite(key: "a", value: [1], expectedVersion: nil)])
            await #expect {
                try await store.commit([
                    StoreWrite(key: "new", value: [9], expectedVersion: nil),
                    StoreWrite(key: "a", value: [2], expectedVersion: 7),
                ])
            } throws: { ($0 as? StoreError)?.code == .conflict }
            #expect(try await store.read("new") == nil, "\(name)")
            #expect(try await store.read("a")?.bytes == [1], "\(name)")
            await #expect(throws: StoreError.self) {
                try await store.commit([StoreWrite(key: "a", value: [5], expectedVersion: nil)])
            }
            await store.close()
        }
    }

    @Test func concurrentCommitsNeitherInterleaveNorLoseWrites() async throws {
        for (name, store) in try await Self.stores() {
            await withTaskGroup(of: Void.self) { group in
                for index in 0..<50 {
                    group.addTask {
                        try? await store.commit([
                            StoreWrite(key: "k\(index)", value: [UInt8(index)], expectedVersion: nil)
                        ])
                    }
                }
            }
            #expect(try await store.keys(withPrefix: "k").count == 50, "\(name)")
            await store.close()
        }
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
