import JSONText

/// `Codable` through the manifest's JSON form, so other modules can store a ``Manifest`` with
/// any encoder. Decoding validates nothing beyond reading: use ``ManifestDocument`` for checks.
extension Manifest: Codable {
    public init(from decoder: any Decoder) throws {
        let value = try JSONValue(from: decoder)
        var reader = ManifestDecoder(strict: false)
        self = reader.decode(value)
        let errors = reader.problems.problems.filter { $0.severity == .error }
        if !errors.isEmpty {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(
                    codingPath: decoder.codingPath,
                    debugDescription: errors.map(\.description).joined(separator: "; ")))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        try jsonValue.encode(to: encoder)
    }
}

extension JSONValue: Codable {
    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: any Decoder) throws {
        if let object = try? decoder.container(keyedBy: Key.self) {
            self = .object(
                try object.allKeys.sorted { $0.stringValue < $1.stringValue }.map {
                    JSONMember($0.stringValue, try object.decode(JSONValue.self, forKey: $0))
                })
            return
        }
        if var array = try? decoder.unkeyedContainer() {
            var elements: [JSONValue] = []
            while !array.isAtEnd { elements.append(try array.decode(JSONValue.self)) }
            self = .array(elements)
            return
        }
        let single = try decoder.singleValueContainer()
        if single.decodeNil() {
            self = .null
        } else if let flag = try? single.decode(Bool.self) {
            self = .bool(flag)
        } else if let number = try? single.decode(UInt64.self) {
            self = .number(String(number))
        } else if let number = try? single.decode(Int64.self) {
            self = .number(String(number))
        } else if let number = try? single.decode(Double.self) {
            self = .number("\(number)")
        } else {
            self = .string(try single.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .null:
            var single = encoder.singleValueContainer()
            try single.encodeNil()
        case .bool(let flag):
            var single = encoder.singleValueContainer()
            try single.encode(flag)
        case .number(let literal):
            var single = encoder.singleValueContainer()
            if let number = UInt64(literal) {
                try single.encode(number)
            } else if let number = Int64(literal) {
                try single.encode(number)
            } else {
                try single.encode(Double(literal) ?? 0)
            }
        case .string(let text):
            var single = encoder.singleValueContainer()
            try single.encode(text)
        case .array(let elements):
            var array = encoder.unkeyedContainer()
            for element in elements { try array.encode(element) }
        case .object(let members):
            var object = encoder.container(keyedBy: Key.self)
            for member in members { try object.encode(member.value, forKey: Key(stringValue: member.key)) }
        }
    }
}
