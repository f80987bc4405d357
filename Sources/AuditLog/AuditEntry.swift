import JSONText

/// One change recorded in the Coordinator's update log: what happened, when, by whom, and the
/// hash of the line before it. Details name things (secrets, packages, fingerprints); they never
/// hold secret values.
public struct AuditEntry: Sendable, Hashable {
    /// 1 for the first entry, then each entry one more.
    public var sequence: Int
    /// RFC 3339 UTC time of the change.
    public var time: String
    /// What changed: see ``AuditEvent``.
    public var event: String
    /// The manifest user who made the change; nil for unauthenticated calls (the first manifest,
    /// recovery).
    public var user: String?
    public var details: [String: String]
    /// Lower-case hex SHA-256 of the previous line's bytes; 64 zeros for the first entry.
    public var previous: String

    public init(
        sequence: Int, time: String, event: String, user: String?, details: [String: String], previous: String
    ) {
        self.sequence = sequence
        self.time = time
        self.event = event
        self.user = user
        self.details = details
        self.previous = previous
    }

    /// The members every line has, except the signature.
    var members: [JSONMember] {
        [
            JSONMember("details", .object(details.map { JSONMember($0.key, .string($0.value)) })),
            JSONMember("event", .string(event)),
            JSONMember("previous", .string(previous)),
            JSONMember("sequence", .number(String(sequence))),
            JSONMember("time", .string(time)),
            JSONMember("user", user.map { .string($0) } ?? .null),
        ]
    }
}

/// The events the Coordinator records.
public enum AuditEvent {
    public static let manifestSet = "manifest-set"
    public static let secretsWritten = "secrets-written"
    public static let packageUpdated = "package-updated"
    public static let updateProposed = "manifest-update-proposed"
    public static let updateAcknowledged = "manifest-update-acknowledged"
    public static let updateApplied = "manifest-update-applied"
    public static let updateCancelled = "manifest-update-cancelled"
    public static let recovered = "recovered"
}
