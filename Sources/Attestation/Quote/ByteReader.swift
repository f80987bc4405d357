/// Reads little-endian fields from quote bytes; running past the end names the field.
struct ByteReader {
    let bytes: [UInt8]
    private(set) var offset: Int

    init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    var remaining: Int { bytes.count - offset }

    mutating func read(_ count: Int, _ field: String) throws(AttestationError) -> [UInt8] {
        guard count >= 0, count <= remaining else {
            throw AttestationError(
                .truncated,
                "the quote ends inside \(field): \(count) bytes needed at offset \(offset), \(remaining) left")
        }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    mutating func u16(_ field: String) throws(AttestationError) -> UInt16 {
        let raw = try read(2, field)
        return UInt16(raw[0]) | UInt16(raw[1]) << 8
    }

    mutating func u32(_ field: String) throws(AttestationError) -> UInt32 {
        let raw = try read(4, field)
        return raw.reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }

    mutating func u64(_ field: String) throws(AttestationError) -> UInt64 {
        let raw = try read(8, field)
        return raw.reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }
}

extension Array where Element == UInt8 {
    func littleEndianU16(at offset: Int) -> UInt16 {
        UInt16(self[offset]) | UInt16(self[offset + 1]) << 8
    }

    func littleEndianU32(at offset: Int) -> UInt32 {
        self[offset..<offset + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }
}
