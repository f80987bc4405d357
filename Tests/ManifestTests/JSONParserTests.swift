import JSONText
import Manifest
import Testing

@Suite struct JSONParserTests {
    private func parse(_ text: String, depth: Int = 64) throws(JSONSyntaxError) -> JSONValue {
        try JSONParser(maximumDepth: depth).parse(Array(text.utf8))
    }

    @Test func keepsKeyOrderDuplicatesAndNumberText() throws {
        let value = try parse(
            #" {"b": 1.0, "a": [true, false, null], "b": 18446744073709551615, "s": "\u00e9\ud83d\ude00\n"} "#)
        guard case .object(let members) = value else {
            Issue.record("not an object")
            return
        }
        #expect(members.map(\.key) == ["b", "a", "b", "s"])
        #expect(members[0].value == .number("1.0"))
        #expect(members[1].value == .array([.bool(true), .bool(false), .null]))
        #expect(members[2].value == .number("18446744073709551615"))
        #expect(members[3].value == .string("é😀\n"))
    }

    @Test func toleratesByteOrderMark() throws {
        #expect(try JSONParser().parse([0xEF, 0xBB, 0xBF] + Array("{}".utf8)) == .object([]))
    }

    static let malformed: [(String, Int, Int, String)] = [
        ("{\"a\": 1,}", 1, 9, "expected a quoted key"),
        ("{\"a\": 1", 1, 8, "unclosed object"),
        ("[1, 2", 1, 6, "unclosed array"),
        ("{\"a\": \"x}", 1, 7, "unterminated string"),
        ("{\"a\": \"\\x\"}", 1, 8, "invalid escape"),
        ("{\"a\": \"tab\there\"}", 1, 11, "control character"),
        ("{\"a\": 012}", 1, 8, "leading zero"),
        ("{\"a\": 1.}", 1, 9, "expected a digit after '.'"),
        ("{\"a\": -}", 1, 8, "expected a digit"),
        ("{\"a\": tru}", 1, 7, "expected 'true'"),
        ("{} x", 1, 4, "after the end of the document"),
        ("{\n  \"a\": 1\n  \"b\": 2\n}", 3, 3, "expected ',' or '}'"),
        ("{\"a\": \"\\ud800\"}", 1, 14, "unpaired UTF-16 surrogate"),
        ("", 1, 1, "expected a value"),
    ]

    @Test(arguments: malformed)
    func reportsWhereAndWhy(text: String, line: Int, column: Int, reason: String) {
        #expect {
            _ = try parse(text)
        } throws: { error in
            guard let error = error as? JSONSyntaxError else { return false }
            return error.line == line && error.column == column && error.reason.contains(reason)
        }
    }

    @Test func rejectsInvalidUTF8() {
        #expect(throws: JSONSyntaxError.self) { try JSONParser().parse([0x22, 0xC3, 0x28, 0x22]) }
    }

    @Test func refusesNestingBeyondTheLimitWithoutRecursingFurther() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect {
            _ = try parse(deep)
        } throws: { ($0 as? JSONSyntaxError)?.reason.contains("nesting deeper than 64") == true }
        #expect(throws: Never.self) {
            _ = try parse(String(repeating: "[", count: 64) + String(repeating: "]", count: 64))
        }
    }

    @Test func serializesLikeGo() throws {
        let value = try parse(#"{"b": "<&>\u2028", "a": [1, {"d": null, "c": "\"\\\u0001"}], "b": "last"}"#)
        let text = String(decoding: value.serialized(), as: UTF8.self)
        #expect(text == #"{"a":[1,{"c":"\"\\\u0001","d":null}],"b":"last"}"#)
        let escaped = String(decoding: JSONValue.string("<a&b>\u{2028}").serialized(), as: UTF8.self)
        #expect(escaped == #""\u003ca\u0026b\u003e\u2028""#)
    }
}

@Suite struct JSONTopLevelRangeTests {
    @Test func givesTheExactBytesOfEachTopLevelValue() throws {
        let text = #"{"tcbInfo":{"a":[1,{"b":"}"}]} , "signature" : "ab12"}"#
        let bytes = Array(text.utf8)
        let members = try JSONParser().topLevelMembers(bytes)
        #expect(members.map(\.member.key) == ["tcbInfo", "signature"])
        #expect(String(decoding: bytes[members[0].range], as: UTF8.self) == #"{"a":[1,{"b":"}"}]}"#)
        #expect(String(decoding: bytes[members[1].range], as: UTF8.self) == #""ab12""#)
    }
}
