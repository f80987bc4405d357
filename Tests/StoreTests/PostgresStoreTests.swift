import CoordinatorTesting
import Foundation
import Store
import Synchronization
import Testing

/// One throwaway PostgreSQL server per suite, started before its tests and removed after.
struct PostgresScope: SuiteTrait, TestScoping {
    @TaskLocal static var server: PostgresServer?

    func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        let server = try await PostgresServer(tls: true)
        do {
            try await server.start()
            try await Self.$server.withValue(server) { try await function() }
        } catch {
            await server.remove()
            throw error
        }
        await server.remove()
    }

    /// The suite's server.
    static func current() throws -> PostgresServer {
        try #require(server, "the suite needs the .postgres trait")
    }

    private static let databases = Mutex(0)

    /// A fresh database on the suite's server.
    static func database(sslmode: String? = nil) async throws -> String {
        let number = databases.withLock { count in
            count += 1
            return count
        }
        return try await current().createDatabase(
            "test\(number)_\(UInt32.random(in: 0...UInt32.max))", sslmode: sslmode)
    }
}

extension Trait where Self == PostgresScope {
    static var postgres: PostgresScope { PostgresScope() }
}

/// The PostgreSQL store: the same contract as SQLite's, and what replicas need of it — two
/// clients on one database never lose a write, TLS to the database, outages reported and survived.
@Suite(.postgres, .serialized) struct PostgresStoreTests {
    @Test func theStoreContractHoldsOnPostgres() async throws {
        for _ in 0..<3 {
            let store = try await PostgresStore.open(url: try await PostgresScope.database())
            try await StoreTests.checkContract(store, name: "postgres")
        }
    }

    @Test func twoClientsIncrementingOneKeyLoseNoUpdate() async throws {
        let url = try await PostgresScope.database()
        let stores = [try await PostgresStore.open(url: url), try await PostgresStore.open(url: url)]
        try await stores[0].commit([StoreWrite(key: "counter", value: Array("0".utf8), expectedVersion: nil)])
        let conflicts = try await withThrowingTaskGroup(of: Int.self) { group in
            for worker in 0..<8 {
                let store = stores[worker % 2]
                group.addTask {
                    var conflicts = 0
                    for _ in 0..<25 {
                        while true {
                            let current = try #require(try await store.read("counter"))
                            let value = Int(String(decoding: current.bytes, as: UTF8.self))! + 1
                            do {
                                try await store.commit([
                                    StoreWrite(
                                        key: "counter", value: Array("\(value)".utf8), expectedVersion: current.version)
                                ])
                                break
                            } catch let error as StoreError where error.code == .conflict {
                                conflicts += 1
                            }
                        }
                    }
                    return conflicts
                }
            }
            return try await group.reduce(0, +)
        }
        let final = try #require(try await stores[1].read("counter"))
        #expect(String(decoding: final.bytes, as: UTF8.self) == "200")
        #expect(final.version == 201)
        #expect(conflicts > 0, "the clients raced: some commits must have lost the race and retried")
        for store in stores { await store.close() }
    }

    /// Listing the few records under one prefix reads an index range, not every record: a
    /// Coordinator lists its indexed records at each start-up and synchronisation, beside up to
    /// 100,000 marbles' UUID records (with the database's collation it was a scan of all of them).
    @Test func aPrefixListingReadsAnIndexRangeNotEveryRecord() async throws {
        let url = try await PostgresScope.database()
        let database = try #require(url.split(separator: "/").last.map(String.init))
        let server = try PostgresScope.current()
        // A commit checks each row's version first: small commits, and time for a loaded machine.
        let writer = try await PostgresStore.open(url: url, timeout: .seconds(60))
        for batch in 0..<30 {
            try await writer.commit(
                (0..<100).map { StoreWrite(key: "o/\(batch)-\($0)", value: [1], expectedVersion: nil) })
        }
        try await writer.commit((0..<5).map { StoreWrite(key: "k/\($0)", value: [2], expectedVersion: nil) })
        await writer.close()
        _ = try await server.sql("ANALYZE marblerun_state", database: database)

        // PostgreSQL counts a session's scans when the session ends (or at most 10 s after it goes idle).
        func statistics(until done: @escaping ([Int]) -> Bool) async throws -> [Int] {
            let deadline = ContinuousClock.now + .seconds(30)
            var counts: [Int] = []
            while ContinuousClock.now < deadline {
                counts = try await server.sql(
                    "SELECT n_tup_ins, seq_scan, idx_scan FROM pg_stat_user_tables WHERE relname = 'marblerun_state'",
                    database: database
                ).split(separator: "|").compactMap { Int($0) }
                if counts.count == 3, done(counts) { return counts }
                try await Task.sleep(for: .milliseconds(200))
            }
            Issue.record("the statistics did not arrive within 30 s: \(counts)")
            return counts
        }
        let before = try await statistics { $0[0] >= 3_005 }

        let lister = try await PostgresStore.open(url: url)
        #expect(try await lister.keys(withPrefix: "k/") == (0..<5).map { "k/\($0)" })
        #expect(try await lister.keys(withPrefix: "o/29-9").count == 11)
        await lister.close()
        let after = try await statistics { $0[2] >= before[2] + 2 }
        #expect(after[1] == before[1], "no listing read the whole table (seq_scan \(before[1]) → \(after[1]))")
    }

    @Test func tlsToTheDatabaseIsCheckedAgainstItsCertificate() async throws {
        let url = try await PostgresScope.database(sslmode: "verify-full")
        let store = try await PostgresStore.open(url: url)
        try await store.commit([StoreWrite(key: "over-tls", value: [1], expectedVersion: nil)])
        #expect(try await store.read("over-tls")?.bytes == [1])
        await store.close()

        // Another CA: the server's certificate is refused and nothing is sent.
        let stranger = FileManager.default.temporaryDirectory.appendingPathComponent("stranger-\(UUID()).pem")
        try Data(try TestCertificates.ecdsa(commonName: "localhost").utf8).write(to: stranger)
        let server = try PostgresScope.current()
        let wrong = server.url().replacingOccurrences(
            of: "/postgres", with: "/postgres?sslmode=require&sslrootcert=\(stranger.path)")
        await #expect {
            _ = try await PostgresStore.open(url: wrong, timeout: .seconds(2))
        } throws: { ($0 as? StoreError)?.code == .unavailable }
    }

    @Test func malformedURLsAreRefusedWithoutEchoingThePassword() async throws {
        for url in [
            "", "mysql://u:secret-pw@h/db", "postgres://u:secret-pw@/db", "postgres://u:secret-pw@h/db?sslmode=maybe",
            "postgres://u:secret-pw@h/db?sslmode=prefer",
            "postgres://u:secret-pw@h/db?colour=blue",
        ] {
            await #expect {
                _ = try await PostgresStore.open(url: url)
            } throws: { error in
                guard let error = error as? StoreError else { return false }
                return error.code == .unavailable && !error.message.contains("secret-pw")
            }
        }
        let location = try PostgresStore.Location(
            url: "postgres://alice:secret-pw@db.example:6543/state?sslmode=require")
        #expect(location.host == "db.example" && location.port == 6543 && location.database == "state")
        #expect(!location.description.contains("secret-pw"))
    }

    /// Runs last in the suite: it stops and restarts the suite's server.
    @Test func anOutageIsReportedAndTheSameStoreWorksAfterIt() async throws {
        let server = try PostgresScope.current()
        let store = try await PostgresStore.open(url: try await PostgresScope.database(), timeout: .seconds(2))
        try await store.commit([StoreWrite(key: "before", value: [1], expectedVersion: nil)])
        await server.stop()
        await #expect {
            _ = try await store.read("before")
        } throws: { error in
            guard let error = error as? StoreError else { return false }
            return error.code == .unavailable && error.message.contains("127.0.0.1:\(server.port)")
        }
        try await server.start()
        let deadline = ContinuousClock.now + .seconds(30)
        var value: StoredValue?
        while value == nil, ContinuousClock.now < deadline {
            value = try? await store.read("before")
            if value == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(value?.bytes == [1])
        try await store.commit([StoreWrite(key: "after", value: [2], expectedVersion: nil)])
        await store.close()
    }
}
