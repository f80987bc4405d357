/// A parsed JSON document that keeps what a manifest check needs and `Codable` loses:
/// the order and duplicates of object keys and the exact text of every number.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    /// A number as written, so `18446744073709551615` and `1.0` are judged on their text.
    case number(String)
    case string(String)
    case array([JSONValue])
    /// Members in document order; a key may appear twice (the later one wins, as in Go).
    case object([JSONMember])

    /// A short name of the value's kind for messages ("an object", "a string").
    public var kindDescription: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// One `"key": value` pair of a JSON object.
public struct JSONMember: Sendable, Hashable {
    public var key: String
    public var value: JSONValue

    public init(_ key: String, _ value: JSONValue) {
        self.key = key
        self.value = value
    }
}
