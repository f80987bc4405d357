import Attestation
import CoordinatorCore
import CoordinatorTesting
import Foundation
import Store

/// `coordinator-bench stores [seconds]`: in-process activations (64 concurrent, each a full quote
/// verification and a durable commit) on the embedded SQLite store, on PostgreSQL with one
/// Coordinator, and on PostgreSQL with three Coordinator replicas sharing the database (each with
/// its own connection pool, the load spread over them). A throwaway PostgreSQL server (Debian's
/// binaries) runs on loopback with its default durability (fsync on, synchronous_commit on).
enum StoreBench {
    static let concurrency = 64

    static func run(seconds: Double) async throws {
        let platform = try SimulatedPlatform.generate()
        let enclave = ActivationManifest.enclave(on: platform)
        var prepared: [(marble: TestMarble, quote: [UInt8])] = []
        for _ in 0..<256 {
            let marble = try TestMarble()
            prepared.append((marble, try marble.quote(platform, enclave: enclave)))
        }
        let marbles = prepared
        let manifest = ActivationManifest.bytes(signerID: enclave.signerID, maxActivations: 0)
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("store-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }

        func coordinators(_ stores: [any StateStore], shared: Bool) async throws -> [Coordinator] {
            var configuration = Coordinator.Configuration()
            configuration.sharedStore = shared
            let sealer = EphemeralSealer()
            var started: [Coordinator] = []
            for store in stores {
                started.append(
                    try await Coordinator.start(
                        configuration: configuration, verifier: platform.verifier,
                        collateralProvider: StaticCollateralProvider(platform.collateral), store: store, sealer: sealer)
                )
            }
            _ = try await started[0].setManifest(manifest)
            return started
        }

        func measure(_ name: String, _ replicas: [Coordinator]) async throws {
            let end = ContinuousClock.now + .seconds(seconds)
            let latencies = try await withThrowingTaskGroup(of: [Duration].self) { group in
                for worker in 0..<concurrency {
                    group.addTask {
                        var latencies: [Duration] = []
                        var index = worker
                        while ContinuousClock.now < end {
                            let (marble, quote) = marbles[index % marbles.count]
                            let start = ContinuousClock.now
                            _ = try await replicas[index % replicas.count].activate(
                                ActivationRequest(
                                    quote: quote, csr: marble.csr, marbleType: "backend", uuid: UUID().uuidString),
                                peerCertificate: marble.certificate)
                            latencies.append(ContinuousClock.now - start)
                            index += concurrency
                        }
                        return latencies
                    }
                }
                var all: [Duration] = []
                for try await part in group { all += part }
                return all.sorted()
            }
            let count = try await replicas[0].activationCount("backend")
            guard count == latencies.count else {
                throw BenchError("\(latencies.count) activations answered but \(count) counted")
            }
            print(
                String(
                    format: "| %@ | %.0f /s | %.1f ms | %.1f ms | %d |", name, Double(latencies.count) / seconds,
                    milliseconds(latencies[latencies.count / 2]), milliseconds(latencies[latencies.count * 99 / 100]),
                    latencies.count))
        }

        print(
            "| activations in-process (\(concurrency) concurrent, \(Int(seconds)) s) | rate | p50 | p99 | completed |")
        print("|---|---|---|---|---|")
        let sqlite = try await SQLiteStore.open(path: work.appendingPathComponent("state.sqlite").path)
        try await measure("SQLite (embedded, one Coordinator)", try await coordinators([sqlite], shared: false))
        await sqlite.close()

        try await PostgresServer.with { database in
            let one = try await PostgresStore.open(url: try await database.createDatabase("one"))
            try await measure("PostgreSQL, one Coordinator", try await coordinators([one], shared: true))
            await one.close()
            let url = try await database.createDatabase("three")
            var stores: [PostgresStore] = []
            for _ in 0..<3 { stores.append(try await PostgresStore.open(url: url)) }
            try await measure("PostgreSQL, three replicas (load spread)", try await coordinators(stores, shared: true))
            for store in stores { await store.close() }
        }
    }
}
