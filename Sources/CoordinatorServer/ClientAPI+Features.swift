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
        let quote = try ClientRequestBodies.signQuote(body)
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
        let (name, value) = try ClientRequestBodies.monotonicCounter(body)
        let previous = try await coordinator.setMonotonicCounter(
            marbleType: marble.type, uuid: marble.uuid, name: name, value: value)
        return .object([JSONMember("value", .number(String(previous)))])
    }
}
