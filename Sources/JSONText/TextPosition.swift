/// A 1-based line and column (in bytes) of an offset in a text, for error messages.
public struct TextPosition: Sendable, Hashable {
    public var line: Int
    public var column: Int

    public init(of offset: Int, in text: [UInt8]) {
        let end = min(offset, text.count)
        var line = 1
        var lineStart = 0
        for index in 0..<end where text[index] == UInt8(ascii: "\n") {
            line += 1
            lineStart = index + 1
        }
        self.line = line
        self.column = end - lineStart + 1
    }
}
