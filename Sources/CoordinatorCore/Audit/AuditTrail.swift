import AuditLog
import Foundation
import JSONText
import Store
import X509

/// Where the update log stands in the sealed store. Entries are the records `log/1`, `log/2`, …
/// and `log/head` holds their count and the last line's hash. A change and its log entry are
/// written in one commit, so neither exists without the other.
struct AuditTrail: Sendable {
    static let headName = "log/head"

    private(set) var count = 0
    private(set) var last = AuditLog.genesis
    /// Version of the `log/head` record; nil while the log is empty.
    private(set) var version: Int64?

    static func entryName(_ sequence: Int) -> String { "log/\(sequence)" }

    /// The same position for a re-encrypted store, where the head is written anew.
    func rebased() -> AuditTrail { AuditTrail(count: count, last: last, version: nil) }

    static func load(from sealed: SealedStore) async throws(CoordinatorError) -> AuditTrail {
        guard let record = try await sealed.read(headName) else { return AuditTrail() }
        guard case .object(let members) = try? JSONParser().parse(record.bytes),
            case .number(let countText)? = members.first(where: { $0.key == "count" })?.value,
            let count = Int(countText), count >= 0,
            case .string(let last)? = members.first(where: { $0.key == "last" })?.value
        else {
            throw CoordinatorError(.sealedState, "the sealed update log head is malformed")
        }
        return AuditTrail(count: count, last: last, version: record.version)
    }

    /// An entry to append: what happened, by whom, with which (non-secret) details.
    struct Event: Sendable {
        var name: String
        var user: String?
        var details: [String: String]

        init(_ name: String, user: String?, details: [String: String]) {
            self.name = name
            self.user = user
            self.details = details
        }
    }

    /// The writes that append `events` (in order) and the trail after them. They belong in the
    /// same commit as the change they record.
    func appending(_ events: [Event], at time: Date, signedBy key: SigningKey, in sealed: SealedStore)
        throws(CoordinatorError) -> (writes: [StoreWrite], trail: AuditTrail)
    {
        guard !events.isEmpty else { return ([], self) }
        var writes: [StoreWrite] = []
        var next = self
        for event in events {
            let entry = AuditEntry(
                sequence: next.count + 1, time: time.formatted(.iso8601), event: event.name, user: event.user,
                details: event.details, previous: next.last)
            let line: [UInt8]
            do {
                line = try AuditLog.line(for: entry) { try key.signature(forDigest: $0) }
            } catch {
                throw CoordinatorError(.internalFailure, "signing the update log entry failed")
            }
            writes.append(try sealed.write(Self.entryName(entry.sequence), line, expectedVersion: nil))
            next.count = entry.sequence
            next.last = AuditLog.hash(of: line)
        }
        next.version = (version ?? 0) + 1
        let head = JSONValue.object([
            JSONMember("count", .number(String(next.count))), JSONMember("last", .string(next.last)),
        ]).serialized()
        writes.append(try sealed.write(Self.headName, head, expectedVersion: version))
        return (writes, next)
    }

    /// Reads every line and checks the chain and signatures against the root certificate, so
    /// that a start-up notices a damaged log before it appends to it.
    func verify(in sealed: SealedStore, root: Certificate) async throws(CoordinatorError) {
        let lines = try await lines(in: sealed)
        do {
            _ = try AuditLog.verify(lines, root: root)
        } catch {
            throw CoordinatorError(.sealedState, "the sealed update log does not verify: \(error.description)")
        }
        guard lines.isEmpty || AuditLog.hash(of: lines[lines.count - 1]) == last else {
            throw CoordinatorError(.sealedState, "the sealed update log head does not match its last entry")
        }
    }

    /// Every line, oldest first.
    func lines(in sealed: SealedStore) async throws(CoordinatorError) -> [[UInt8]] {
        var lines: [[UInt8]] = []
        for sequence in stride(from: 1, through: count, by: 1) {
            guard let record = try await sealed.read(Self.entryName(sequence)) else {
                throw CoordinatorError(.sealedState, "update log entry \(sequence) of \(count) is missing")
            }
            lines.append(record.bytes)
        }
        return lines
    }
}
