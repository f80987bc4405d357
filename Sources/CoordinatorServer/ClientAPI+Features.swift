import CoordinatorCore
import Hummingbird
import JSONText
import NIOSSL

/// The feature-gated endpoints of the client API: sign-quote and monotonic-counter (compat §1).
extension ClientAPI {
    static let featurePaths: Set<String> = ["/api/v2/sign-quote", "/api/v2/monotonic-counter"]

    func addFeatureRoutes(to router: Router<ClientRequestContext>) {
        router.post("/api/v2/sign-quote") { request, _ in
            let body = try await request.body.collect(upTo: maximumBodySize)
            return try await JSend.success(signQuote(Array(buffer: body)))
        }
        router.post("/api/v2/monotonic-counter") { request, context in
            let body = try await request.body.collect(upTo: 64 << 10)
            return try await JSend.success(monotonicCounter(Array(buffer: body), context))
        }
    }

    /// `{"sgxQuote": base64}` → `{tcbStatus, verificationSignature}`.
    func signQuote(_ body: [UInt8]) async throws -> JSONValue {
        guard await coordinator.isFeatureEnabled(Coordinator.signQuoteFeature) else {
            throw CoordinatorError(.forbidden, "the manifest does not enable the SignQuoteEndpoint feature gate")
        }
        let fields = try Self.objectFields(body, allowed: ["sgxquote"])
        guard case .string(let text)? = fields["sgxquote"], let quote = Base64.decode(text) else {
            throw RequestError("\"sgxQuote\" must be the quote in standard base64")
        }
        let (status, signature) = try await coordinator.signQuote(quote)
        return .object([
            JSONMember("tcbStatus", .string(status)), JSONMember("verificationSignature", .bytes(signature)),
        ])
    }

    /// `{"name": string, "value": integer}` from a marble → `{"value": previous}`.
    func monotonicCounter(_ body: [UInt8], _ context: ClientRequestContext) async throws -> JSONValue {
        guard await coordinator.isFeatureEnabled(Coordinator.monotonicCounterFeature) else {
            throw CoordinatorError(.forbidden, "the manifest does not enable the MonotonicCounter feature gate")
        }
        let certificate = try? await context.channel.nioSSL_peerCertificate().get()?.toDERBytes()
        let marble = try await coordinator.verifyMarble(certificate)
        let fields = try Self.objectFields(body, allowed: ["name", "value"])
        guard case .string(let name)? = fields["name"] else { throw RequestError("\"name\" must be a string") }
        guard case .number(let text)? = fields["value"], let value = UInt64(text) else {
            throw RequestError("\"value\" must be an integer from 0 to 18446744073709551615")
        }
        let previous = try await coordinator.setMonotonicCounter(
            marbleType: marble.type, uuid: marble.uuid, name: name, value: value)
        return .object([JSONMember("value", .number(String(previous)))])
    }

    /// The members of a JSON object body by lower-cased name (Go matches names that way);
    /// members not in `allowed` are refused.
    static func objectFields(_ body: [UInt8], allowed: Set<String>) throws -> [String: JSONValue] {
        guard case .object(let members)? = try? JSONParser(maximumDepth: 4).parse(body) else {
            throw RequestError("the request body must be a JSON object")
        }
        var fields: [String: JSONValue] = [:]
        for member in members {
            let key = member.key.lowercased()
            guard allowed.contains(key) else {
                throw RequestError("unknown field \"\(member.key.prefix(40))\"")
            }
            fields[key] = member.value
        }
        return fields
    }
}
