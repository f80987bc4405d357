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
        try await sealed.commit(writes)
        for index in 0..<20 {
            #expect(try await sealed.read("record \(index)") == nil)
            #expect(try await next.read("record \(index)")?.bytes == (index == 3 ? nil : [UInt8(index)]))
        }
        #expect(try await store.keys(withPrefix: "k/").count == 19)
    }
}
