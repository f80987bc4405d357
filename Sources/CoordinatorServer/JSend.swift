import Foundation
import Hummingbird
import JSONText

/// MarbleRun's JSend envelope (compat §1): `success` with data, `fail` for a request the caller
/// must change (4xx), `error` for a failure on our side (5xx).
enum JSend {
    static func success(_ data: JSONValue) -> Response {
        response(.ok, .object([JSONMember("status", .string("success")), JSONMember("data", data)]))
    }

    /// A refusal. The message is repeated at the top level, where MarbleRun's CLI reads it.
    static func failure(_ status: HTTPResponse.Status, _ message: String) -> Response {
        if status.code >= 500 {
            return response(
                status,
                .object([
                    JSONMember("status", .string("error")), JSONMember("data", .null),
                    JSONMember("message", .string(message)),
                ]))
        }
        return response(
            status,
            .object([
                JSONMember("status", .string("fail")),
                JSONMember("data", .object([JSONMember("message", .string(message))])),
                JSONMember("message", .string(message)),
            ]))
    }

    private static func response(_ status: HTTPResponse.Status, _ body: JSONValue) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: body.serialized())))
    }
}

/// A REST request the Coordinator refuses before it reaches the core: becomes a JSend `fail`.
struct RequestError: Error, Sendable {
    var status: HTTPResponse.Status
    var message: String

    init(_ message: String, status: HTTPResponse.Status = .badRequest) {
        self.status = status
        self.message = message
    }
}

extension JSONValue {
    static func bytes(_ bytes: [UInt8]) -> JSONValue { .string(Base64.encode(bytes)) }
    static func integer(_ value: Int) -> JSONValue { .number(String(value)) }
}

/// Standard base64 as Go's `encoding/json` writes `[]byte`, and the URL alphabet for nonces.
enum Base64 {
    static func encode(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    static func decode(_ text: String) -> [UInt8]? { Data(base64Encoded: text).map { Array($0) } }

    /// Go's `base64.URLEncoding` (padded) or its raw form.
    static func decodeURL(_ text: String) -> [UInt8]? {
        guard text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "=") })
        else { return nil }
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        if !standard.contains("=") { standard += String(repeating: "=", count: (4 - standard.count % 4) % 4) }
        return decode(standard)
    }
}
