import Crypto
import Foundation
import Store
import Testing

@testable import CoordinatorCore

@Suite struct SealedStoreTests {
    static let key = Array(repeating: UInt8(9), count: 32)

    @Test func recordsAreBoundToTheirNameAndStorageKey() async throws {
        let store = MemoryStore()
        let sealed = SealedStore(store: store, dataKey: Self.key)
        try await sealed.commit([
            try sealed.write("a", [1], expectedVersion: nil), try sealed.write("b", [2], expectedVersion: nil),
        ])
        #expect(try await sealed.read("a")?.bytes == [1])
        // The ciphertext of "a" moved under the storage name of "b" does not pass as "b".
        let a = try #require(try await store.read(sealed.storageName("a")))
        let b = try #require(try await store.read(sealed.storageName("b")))
        try await store.commit([StoreWrite(key: sealed.storageName("b"), value: a.bytes, expectedVersion: b.version)])
        await expectCode(.sealedState) { _ = try await sealed.read("b") }
    }

    @Test func aStateFromTheEarlierFormatIsNamedAsSuch() async throws {
        let store = MemoryStore()
        let sealed = SealedStore(store: store, dataKey: Self.key)
        let old = try AES.GCM.seal(
            [1, 2, 3], using: SymmetricKey(data: Self.key), authenticating: Array("marblerun-swift state v1|core".utf8))
        try await store.commit([
            StoreWrite(key: sealed.storageName("core"), value: Array(old.combined!), expectedVersion: nil)
        ])
        await #expect {
            _ = try await sealed.read("core")
        } throws: { ($0 as? CoordinatorError)?.message.contains("earlier development build") == true }
    }

    @Test func rekeyingMovesEveryRecordAndLeavesNothingForTheOldKey() async throws {
        let store = MemoryStore()
        let sealed = SealedStore(store: store, dataKey: Self.key)
        try await sealed.commit((0..<20).map { try! sealed.write("record \($0)", [UInt8($0)], expectedVersion: nil) })
        let newKey = Array(repeating: UInt8(7), count: 32)
        let (writes, next) = try await sealed.rekeyWrites(to: newKey, replacing: ["record 3"])
        try await next.commit(writes)
        let old = SealedStore(store: store, dataKey: Self.key)
        for index in 0..<20 {
            #expect(try await old.read("record \(index)") == nil)
            #expect(try await next.read("record \(index)")?.bytes == (index == 3 ? nil : [UInt8(index)]))
        }
        // 19 records and the new key's index.
        #expect(try await store.keys(withPrefix: "k/").count == 20)
    }

    /// The order an index keeps between encodings follows every change of its names: each
    /// encoding is the one a fresh index of the same versions gives.
    @Test func anIndexEncodesAsAFreshOneAfterEveryChange() throws {
        func name(_ byte: UInt8) -> String { "k/" + String(repeating: String(format: "%02x", byte), count: 32) }
        var index = RecordIndex([name(1): 1, name(9): 2, name(5): 3])
        func check(_ step: String) {
            #expect(index.encode() == RecordIndex(index.versions).encoded(), "\(step)")
        }
        check("first")
        index.versions[name(5)] = 4
        check("a version changed")
        index.versions[name(9)] = nil
        index.versions[name(3)] = 1
        check("one name removed and another added: the same count")
        index.versions[name(0)] = 7
        check("a name added")
        index.versions[name(1)] = nil
        check("a name removed")
        index = try #require(RecordIndex.decode(index.encoded()))
        index.versions[name(2)] = 1
        index.versions[name(3)] = nil
        check("decoded, then changed")
        #expect(RecordIndex.decode(index.encode()) == index)
    }

    @Test func anIndexDecodesOnlyWhenWellFormed() throws {
        let a = "k/" + String(repeating: "0a", count: 32)
        let b = "k/" + String(repeating: "ff", count: 32)
        let index = RecordIndex([a: 1, b: 70_000])
        let bytes = index.encoded()
        #expect(bytes.count == 4 + 2 * 40)
        #expect(RecordIndex.decode(bytes) == index)
        #expect(RecordIndex.decode(RecordIndex().encoded()) == RecordIndex())
        // Truncated, extended, a count that does not match, names out of order, version 0.
        #expect(RecordIndex.decode(Array(bytes.dropLast())) == nil)
        #expect(RecordIndex.decode(bytes + [0]) == nil)
        #expect(RecordIndex.decode([]) == nil)
        var count = bytes
        count[3] = 3
        #expect(RecordIndex.decode(count) == nil)
        let swapped = Array(bytes[0..<4]) + Array(bytes[44..<84]) + Array(bytes[4..<44])
        #expect(RecordIndex.decode(swapped) == nil)
        let repeated = Array(bytes[0..<44]) + Array(bytes[4..<44])
        #expect(RecordIndex.decode(repeated) == nil)
        var zero = bytes
        zero.replaceSubrange(36..<44, with: [UInt8](repeating: 0, count: 8))
        #expect(RecordIndex.decode(zero) == nil)
        // A huge count in few bytes is refused before anything is allocated for it.
        #expect(RecordIndex.decode([0xFF, 0xFF, 0xFF, 0xFF]) == nil)
    }

    @Test func everyCommitListsTheRecordsItChangesButNotTheWriteOnceOnes() async throws {
        let store = MemoryStore()
        let sealed = SealedStore(store: store, dataKey: Self.key)
        try await sealed.commit([
            try sealed.write("count/a", [1], expectedVersion: nil),
            try sealed.write("uuid/1", [2], expectedVersion: nil),
        ])
        try await sealed.commit([try sealed.write("count/a", [3], expectedVersion: 1)])
        // Another store on the same data (a restart) reads the index the commits wrote.
        let reopened = SealedStore(store: store, dataKey: Self.key)
        try await reopened.verifyRecords()
        #expect(reopened.index.snapshot(SealedStore.indexName).version == 2)
        #expect(reopened.index.snapshot(SealedStore.indexName).index.versions == [sealed.storageName("count/a"): 2])
        #expect(sealed.storageName("uuid/1").hasPrefix(SealedStore.writeOncePrefix))
        #expect(try await reopened.read("uuid/1")?.bytes == [2])
    }

    @Test func countShardsHaveAnIndexOfTheirOwn() {
        #expect(SealedStore.indexName(forRecord: "count-shard/3/web") == "index/3")
        #expect(SealedStore.indexName(forRecord: "count-shard/3/a/b") == "index/3")
        for name in ["count/web", "core", "count-shard/99/web", "count-shard/x/web", "count-shard/3", "log/head"] {
            #expect(SealedStore.indexName(forRecord: name) == SealedStore.indexName, "\(name)")
        }
    }

    /// A store on which another writer commits right after every listing of records: what a
    /// replica opening the state sees while other replicas count activations without pause.
    actor BusyStore: StateStore {
        let inner = MemoryStore()
        private var busy: (@Sendable () async throws -> Void)?

        func whileListing(_ work: @escaping @Sendable () async throws -> Void) { busy = work }

        func read(_ key: String) async throws(StoreError) -> StoredValue? { try await inner.read(key) }

        func keys(withPrefix prefix: String) async throws(StoreError) -> [String] {
            let keys = try await inner.keys(withPrefix: prefix)
            try? await busy?()
            return keys
        }

        func commit(_ writes: [StoreWrite]) async throws(StoreError) { try await inner.commit(writes) }

        func close() async {}
    }

    @Test func theStateOpensWhileAnotherWriterCommitsBetweenItsReads() async throws {
        let store = BusyStore()
        let writer = SealedStore(store: store, dataKey: Self.key)
        try await writer.commit([
            try writer.write("count/a", [0], expectedVersion: nil),
            try writer.write("count-shard/2/b", [0], expectedVersion: nil),
        ])
        await store.whileListing {
            for name in ["count/a", "count-shard/2/b", "count/new \(UUID())"] {
                let current = try await writer.read(name)
                try await writer.commit([try writer.write(name, [1], expectedVersion: current?.version)])
            }
        }
        // Each check lists the records once, and each listing is followed by three commits.
        for _ in 0..<10 {
            try await SealedStore(store: store, dataKey: Self.key).verifyRecords()
        }
    }
}
