/// A pull reader over JSON bytes for documents whose shape the caller knows: it walks objects
/// and arrays in place and builds only the values the caller asks for. Syntax is checked exactly
/// as ``JSONParser`` checks it; use it where building a whole ``JSONValue`` tree costs too much
/// (Intel's TCB Info, read for every quote).
public struct JSONReader {
    var cursor: Cursor

    public init(_ bytes: [UInt8], maximumDepth: Int = 64) {
        cursor = Cursor(bytes: bytes, maximumDepth: maximumDepth)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { cursor.index = 3 }
        cursor.skipWhitespace()
    }

    private var current: UInt8? {
        cursor.index < cursor.bytes.count ? cursor.bytes[cursor.index] : nil
    }

    /// Calls `member` with each key of the object at the cursor; `member` must read or skip its value.
    public mutating func object(_ member: (inout JSONReader, String) throws -> Void) throws {
        guard current == UInt8(ascii: "{") else { throw cursor.error("expected an object") }
        cursor.index += 1
        cursor.skipWhitespace()
        if current == UInt8(ascii: "}") {
            cursor.index += 1
            cursor.skipWhitespace()
            return
        }
        while true {
            cursor.skipWhitespace()
            guard current == UInt8(ascii: "\"") else { throw cursor.error("expected a quoted key") }
            let key = try cursor.parseString()
            cursor.skipWhitespace()
            guard current == UInt8(ascii: ":") else { throw cursor.error("expected ':' after a key") }
            cursor.index += 1
            cursor.skipWhitespace()
            try member(&self, key)
            cursor.skipWhitespace()
            switch current {
            case UInt8(ascii: ","): cursor.index += 1
            case UInt8(ascii: "}"):
                cursor.index += 1
                cursor.skipWhitespace()
                return
            default: throw cursor.error("expected ',' or '}'")
            }
        }
    }

    /// Calls `element` for each element of the array at the cursor; `element` must read or skip it.
    public mutating func array(_ element: (inout JSONReader) throws -> Void) throws {
        guard current == UInt8(ascii: "[") else { throw cursor.error("expected an array") }
        cursor.index += 1
        cursor.skipWhitespace()
        if current == UInt8(ascii: "]") {
            cursor.index += 1
            cursor.skipWhitespace()
            return
        }
        while true {
            cursor.skipWhitespace()
            try element(&self)
            cursor.skipWhitespace()
            switch current {
            case UInt8(ascii: ","): cursor.index += 1
            case UInt8(ascii: "]"):
                cursor.index += 1
                cursor.skipWhitespace()
                return
            default: throw cursor.error("expected ',' or ']'")
            }
        }
    }

    public mutating func string() throws -> String {
        guard current == UInt8(ascii: "\"") else { throw cursor.error("expected a string") }
        return try cursor.parseString()
    }

    /// A whole number that fits `T`; anything else (fraction, exponent, out of range) is an error.
    public mutating func integer<T: FixedWidthInteger>(_ type: T.Type = T.self) throws -> T {
        let start = cursor.index
        guard let first = current, first == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first)
        else {
            throw cursor.error("expected a number")
        }
        let literal = try cursor.parseNumber()
        guard let value = T(literal) else {
            throw cursor.error("expected a whole number in range, got \(literal)", at: start)
        }
        return value
    }

    /// Reads and discards the value at the cursor.
    public mutating func skip() throws {
        _ = try cursor.parseValue(depth: 0)
    }

    /// True (and consumed) when the value at the cursor is `null`.
    public mutating func null() throws -> Bool {
        guard current == UInt8(ascii: "n") else { return false }
        _ = try cursor.parseValue(depth: 0)
        return true
    }

    /// Requires that nothing but whitespace follows.
    public mutating func finish() throws {
        cursor.skipWhitespace()
        if cursor.index < cursor.bytes.count { throw cursor.error("unexpected content after the document") }
    }
}
