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
        response(status, envelope(status, message))
    }

    /// The body of a refusal: `error` for 5xx, else `fail`.
    static func envelope(_ status: HTTPResponse.Status, _ message: String) -> JSONValue {
        if status.code >= 500 {
            return .object([
                JSONMember("status", .string("error")), JSONMember("data", .null),
                JSONMember("message", .string(message)),
            ])
        }
        return .object([
            JSONMember("status", .string("fail")),
            JSONMember("data", .object([JSONMember("message", .string(message))])),
            JSONMember("message", .string(message)),
        ])
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

/// The JSON object bodies of the client API: members by lower-cased name (Go matches names
/// that way), anything not expected refused, bytes as standard base64.
enum RequestBody {
    static func fields(_ body: [UInt8], allowed: Set<String>) throws -> [String: JSONValue] {
        let value: JSONValue
        do {
            value = try JSONParser(maximumDepth: 8).parse(body)
        } catch {
            throw RequestError("the request body is not JSON: \(error.description)")
        }
        guard case .object(let members) = value else {
            throw RequestError(
                "the request body must be a JSON object with \(allowed.sorted().joined(separator: ", "))")
        }
        var fields: [String: JSONValue] = [:]
        for member in members {
            let key = member.key.lowercased()
            guard allowed.contains(key) else {
                throw RequestError(
                    "unknown field \"\(member.key.prefix(40))\": the body holds \(allowed.sorted().joined(separator: ", "))"
                )
            }
            fields[key] = member.value
        }
        return fields
    }

    /// The required member `name` (lower-case) decoded from standard base64; `shown` names it in errors.
    static func base64(_ fields: [String: JSONValue], _ name: String, shown: String) throws -> [UInt8] {
        guard let value = fields[name] else { throw RequestError("the body has no \"\(shown)\" field") }
        guard case .string(let text) = value, let bytes = Base64.decode(text) else {
            throw RequestError("\"\(shown)\" must be standard base64")
        }
        return bytes
    }
}
