/// A value and the version it was stored with (versions start at 1 and grow with each write).
public struct StoredValue: Sendable, Hashable {
    public var bytes: [UInt8]
    public var version: Int64

    public init(bytes: [UInt8], version: Int64) {
        self.bytes = bytes
        self.version = version
    }
}

/// One change in a commit: set (or with `value` nil, delete) `key`, provided it is still at
/// `expectedVersion` (nil: it must not exist yet). A check (``check(_:at:)``) changes nothing:
/// it only makes the commit conflict unless `key` is at `expectedVersion` when it applies.
public struct StoreWrite: Sendable, Hashable {
    public var key: String
    public var value: [UInt8]?
    public var expectedVersion: Int64?
    /// Only the version condition; the record is left as it is.
    public var isCheck: Bool

    public init(key: String, value: [UInt8]?, expectedVersion: Int64?) {
        self.key = key
        self.value = value
        self.expectedVersion = expectedVersion
        isCheck = false
    }

    /// A condition on `key`'s version that writes nothing: the commit applies only if `key`
    /// is still at `version` (nil: still absent), so a change of one record cannot slip in
    /// between the reads a commit was built from and the commit itself.
    public static func check(_ key: String, at version: Int64?) -> StoreWrite {
        var write = StoreWrite(key: key, value: nil, expectedVersion: version)
        write.isCheck = true
        return write
    }
}

/// A transactional key-value store with optimistic versions. A commit applies all its writes
/// or none, and returns only once it is durable. The store holds whatever bytes it is given;
/// the Coordinator gives it ciphertext only.
public protocol StateStore: Sendable {
    func read(_ key: String) async throws(StoreError) -> StoredValue?
    func keys(withPrefix prefix: String) async throws(StoreError) -> [String]
    /// Applies all writes atomically, or throws ``StoreError/Code/conflict`` and applies none.
    func commit(_ writes: [StoreWrite]) async throws(StoreError)
    func close() async
}

/// A store failure: a version conflict (retry with fresh reads) or an unavailable store.
public struct StoreError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: RawRepresentable, Sendable, Hashable {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public static let conflict = Self(rawValue: "conflict")
        public static let unavailable = Self(rawValue: "unavailable")
        public static let corrupt = Self(rawValue: "corrupt")
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}

/// A store in memory, for tests and ephemeral Coordinators.
public actor MemoryStore: StateStore {
    private var values: [String: StoredValue] = [:]

    public init() {}

    public func read(_ key: String) async throws(StoreError) -> StoredValue? { values[key] }

    public func keys(withPrefix prefix: String) async throws(StoreError) -> [String] {
        values.keys.filter { $0.hasPrefix(prefix) }.sorted()
    }

    public func commit(_ writes: [StoreWrite]) async throws(StoreError) {
        for write in writes where values[write.key]?.version != write.expectedVersion {
            throw StoreError(.conflict, "\(write.key) changed since it was read")
        }
        for write in writes where !write.isCheck {
            if let value = write.value {
                values[write.key] = StoredValue(bytes: value, version: (values[write.key]?.version ?? 0) + 1)
            } else {
                values[write.key] = nil
            }
        }
    }

    public func close() async {}
}

/// The least string above every string that starts with `prefix` in byte order (SQLite's BINARY,
/// PostgreSQL's "C" collation), when the prefix ends in an ASCII character other than DEL (all the
/// Coordinator's do); nil otherwise. Keys under a prefix are then a range of the primary key.
func upperBound(ofPrefix prefix: String) -> String? {
    guard let last = prefix.utf8.last, last < 0x7F else { return nil }
    return String(decoding: prefix.utf8.dropLast() + [last + 1], as: UTF8.self)
}
