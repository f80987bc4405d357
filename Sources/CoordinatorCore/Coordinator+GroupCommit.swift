import Attestation
import Crypto
import Foundation
import Manifest
import Store
import SwiftASN1
import X509

/// Counting activations: group commits that write many marbles' counts in one durable
/// transaction, conditional on the state they were checked under; shards for replicas.
extension Coordinator {
    /// Activations so far of a marble type.
    public func activationCount(_ marbleType: String) async throws(CoordinatorError) -> UInt64 {
        try await synchronize()
        return try await readCount(record: "count/\(marbleType)").count + shardTotal(marbleType)
    }

    /// The record an activation of `marbleType` is counted in: the type's one record, or with
    /// replicas and no limit shard `shard` of it.
    private func countRecord(_ marbleType: String, limit: UInt64, shard: Int) -> String {
        configuration.sharedStore && limit == 0 ? "count-shard/\(shard)/\(marbleType)" : "count/\(marbleType)"
    }

    /// Activations counted in shards (replicas, unlimited types); 0 without replicas.
    private func shardTotal(_ marbleType: String) async throws(CoordinatorError) -> UInt64 {
        guard configuration.sharedStore else { return 0 }
        var total: UInt64 = 0
        for shard in 0..<Self.countShards {
            total += try await readCount(record: "count-shard/\(shard)/\(marbleType)").count
        }
        return total
    }

    func readCount(record name: String) async throws(CoordinatorError) -> (count: UInt64, version: Int64?) {
        guard let record = try await sealed.read(name) else { return (0, nil) }
        guard record.bytes.count == 8 else {
            throw CoordinatorError(.sealedState, "the activation count \(name) is malformed")
        }
        return (record.bytes.reduce(0) { $0 << 8 | UInt64($1) }, record.version)
    }

    /// An activation waiting to be counted by the next group commit.
    struct PendingCount {
        var marbleType: String
        /// The UUID's record to write with the count; nil when it was already stored.
        var uuidRecord: String?
        var limit: UInt64
        var epoch: UInt64
        var done: CheckedContinuation<Result<Void, CoordinatorError>, Never>
    }

    /// Counts an activation durably. Concurrent activations are group-committed: the
    /// activations waiting while one commit runs are written together in the next one, so the
    /// limit holds, none is lost, and one durable write serves many marbles.
    func countActivation(of marbleType: String, uuidRecord: String?, limit: UInt64, epoch: UInt64)
        async throws(CoordinatorError)
    {
        let result = await withCheckedContinuation { continuation in
            pendingCounts.append(
                PendingCount(
                    marbleType: marbleType, uuidRecord: uuidRecord, limit: limit, epoch: epoch, done: continuation))
            if !isCommittingCounts {
                isCommittingCounts = true
                Task { await self.commitPendingCounts() }
            }
        }
        try result.get()
    }

    private func commitPendingCounts() async {
        while !pendingCounts.isEmpty {
            let batch = pendingCounts
            pendingCounts = []
            let results = await commitCounts(batch)
            for (pending, result) in zip(batch, results) { pending.done.resume(returning: result) }
        }
        isCommittingCounts = false
    }

    /// Commits one batch in a single transaction. A conflict means another writer of the store
    /// (a replica) counted meanwhile: the batch is read again and retried.
    private func commitCounts(_ batch: [PendingCount]) async -> [Result<Void, CoordinatorError>] {
        var lastError = CoordinatorError(.conflict, "too many concurrent activations; retry")
        for attempt in 1...8 {
            let attemptKey = sealed.dataKeyBytes
            let attemptEpoch = stateEpoch
            let attemptCoreVersion = coreVersion
            do throws(CoordinatorError) {
                var results: [Result<Void, CoordinatorError>] = []
                // Per count record: its stored value and version, what this batch adds, and (for a
                // limit) what shards hold besides it.
                var counts: [String: (stored: UInt64, version: Int64?, added: UInt64, others: UInt64)] = [:]
                let shard = countShard
                var writes: [StoreWrite] = []
                // UUID records this batch writes, with their marble types.
                var written: [String: String] = [:]
                for pending in batch {
                    if pending.epoch != attemptEpoch {
                        results.append(.failure(Self.manifestChanged))
                        continue
                    }
                    // The first attempt trusts activate's read: a UUID record is written only if
                    // absent, so a UUID stored meanwhile makes the commit conflict and the retry
                    // reads it.
                    var uuidWrite = pending.uuidRecord
                    if let name = uuidWrite {
                        var known = written[name]
                        if known == nil, attempt > 1 {
                            known = try await sealed.read(name).map { String(decoding: $0.bytes, as: UTF8.self) }
                        }
                        if let known {
                            guard known == pending.marbleType else {
                                results.append(.failure(Self.uuidOfAnotherType(String(name.dropFirst("uuid/".count)))))
                                continue
                            }
                            uuidWrite = nil
                        }
                    }
                    let record = countRecord(pending.marbleType, limit: pending.limit, shard: shard)
                    if counts[record] == nil {
                        let (stored, version) = try await readCount(record: record)
                        let others = pending.limit > 0 ? try await shardTotal(pending.marbleType) : 0
                        counts[record] = (stored, version, 0, others)
                    }
                    let entry = counts[record]!
                    if pending.limit > 0, entry.others + entry.stored + entry.added >= pending.limit {
                        results.append(
                            .failure(
                                CoordinatorError(
                                    .activationLimit,
                                    "marble type \(pending.marbleType) may be activated \(pending.limit) time(s); it has been"
                                )))
                        continue
                    }
                    counts[record]!.added += 1
                    if let name = uuidWrite {
                        written[name] = pending.marbleType
                        writes.append(try sealed.write(name, Array(pending.marbleType.utf8), expectedVersion: nil))
                    }
                    results.append(.success(()))
                }
                for (record, entry) in counts where entry.added > 0 {
                    let bytes = withUnsafeBytes(of: (entry.stored + entry.added).bigEndian) { Array($0) }
                    writes.append(try sealed.write(record, bytes, expectedVersion: entry.version))
                }
                if !writes.isEmpty {
                    // The count lands only if the state the activations were checked against is
                    // still the stored one: an update committed meanwhile makes this conflict.
                    writes.append(.check(sealed.storageName("core"), at: attemptCoreVersion))
                    try await sealed.commit(writes)
                    // Re-encrypted during this attempt (a recovery-key update): these records may
                    // have gone to the old names; count again in the new state.
                    if sealed.dataKeyBytes != attemptKey {
                        lastError = CoordinatorError(.conflict, "the state was re-encrypted during the commit")
                        continue
                    }
                }
                return results
            } catch {
                guard error.code == .conflict else { return batch.map { _ in .failure(error) } }
                lastError = error
                countShard = Int.random(in: 0..<Self.countShards)
                if await coreChanged(since: attemptCoreVersion) || stateEpoch != attemptEpoch {
                    return batch.map { _ in .failure(Self.manifestChanged) }
                }
                continue
            }
        }
        return batch.map { _ in .failure(lastError) }
    }

    /// The stored state is no longer at `version` (or cannot be read to tell).
    private func coreChanged(since version: Int64) async -> Bool {
        guard let stored = try? await sealed.store.read(sealed.storageName("core")) else { return true }
        return stored.version != version
    }
}
