import Foundation
import JSONText

/// Exposed for tests of the collateral time format.
public enum CollateralTimeProbe {
    public static func parse(_ text: String) -> Date? { CollateralDate.parse(text) }
}

enum CollateralDate {
    static func decode<K: CodingKey>(_ container: KeyedDecodingContainer<K>, _ key: K) throws -> Date {
        let text = try container.decode(String.self, forKey: key)
        guard let date = parse(text) else {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: container, debugDescription: "not an RFC 3339 time: \(text)")
        }
        return date
    }

    /// `YYYY-MM-DDTHH:MM:SS[.fff]Z`, the form Intel's collateral uses, read without a
    /// formatter (this runs several times per verification).
    static func parse(_ text: String) -> Date? {
        let digits = Array(text.utf8)
        guard digits.count >= 20, digits.last == UInt8(ascii: "Z"), digits[4] == UInt8(ascii: "-"),
            digits[7] == UInt8(ascii: "-"),
            digits[10] == UInt8(ascii: "T") || digits[10] == UInt8(ascii: "t"), digits[13] == UInt8(ascii: ":"),
            digits[16] == UInt8(ascii: ":")
        else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for index in range {
                let digit = Int(digits[index]) - 48
                guard (0...9).contains(digit) else { return nil }
                value = value * 10 + digit
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
            let minute = number(14..<16), let second = number(17..<19), (1...12).contains(month),
            (1...31).contains(day),
            hour < 24, minute < 60, second < 61
        else { return nil }
        var fraction = 0.0
        if digits.count > 20 {
            guard digits[19] == UInt8(ascii: "."), digits.count > 21, let value = number(20..<digits.count - 1) else {
                return nil
            }
            fraction = Double(value) / pow(10, Double(digits.count - 21))
        }
        return date(year: year, month: month, day: day, hour: hour, minute: minute, second: second, fraction: fraction)
    }

    /// A UTC calendar time as a Date, computed directly (Howard Hinnant's days-from-civil):
    /// Foundation's Calendar is far slower and this runs several times per verification.
    static func date(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int, fraction: Double = 0) -> Date
    {
        let shiftedYear = month <= 2 ? year - 1 : year
        let era = (shiftedYear >= 0 ? shiftedYear : shiftedYear - 399) / 400
        let yearOfEra = shiftedYear - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        return Date(timeIntervalSince1970: Double(days * 86_400 + hour * 3600 + minute * 60 + second) + fraction)
    }
}

enum CollateralHex {
    static func decode<K: CodingKey>(_ container: KeyedDecodingContainer<K>, _ key: K, length: Int) throws -> [UInt8] {
        let text = try container.decode(String.self, forKey: key)
        guard let bytes = Hex.decode(text), bytes.count == length else {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: container, debugDescription: "expected \(length * 2) hex digits")
        }
        return bytes
    }

}

/// Reads one collateral JSON object in place, mapping any syntax or content error to
/// ``AttestationError/Code/malformedCollateral`` naming the document.
enum CollateralObject {
    static func read(
        _ bytes: [UInt8], document: String, member: (inout JSONReader, String) throws -> Void
    ) throws(AttestationError) {
        do {
            var reader = JSONReader(bytes)
            try reader.object(member)
            try reader.finish()
        } catch let error as AttestationError {
            throw error
        } catch {
            throw AttestationError(.malformedCollateral, "the \(document) is not valid: \(error)")
        }
    }
}
