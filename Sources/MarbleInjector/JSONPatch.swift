import JSONText

/// One RFC 6902 operation; the injector only adds, so that nothing a pod sets is replaced.
public struct PatchOperation: Sendable, Hashable {
    public var path: [String]
    public var value: JSONValue

    public init(add path: [String], _ value: JSONValue) {
        self.path = path
        self.value = value
    }

    /// The path as an RFC 6901 JSON Pointer (`~` as `~0`, `/` as `~1`).
    public var pointer: String {
        path.map { "/" + $0.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1") }
            .joined()
    }

    public var json: JSONValue {
        .object([JSONMember("op", .string("add")), JSONMember("path", .string(pointer)), JSONMember("value", value)])
    }
}

extension Array where Element == PatchOperation {
    /// The patch as the JSON array an AdmissionResponse carries (base64-encoded there).
    public var serialized: [UInt8] { JSONValue.array(map(\.json)).serialized() }
}
