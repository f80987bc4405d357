import CoordinatorCore
import Hummingbird
import JSONText
import Manifest
import NIOSSL
import SwiftASN1

/// The user endpoints of the client API: secrets and the update log (compat §1).
extension ClientAPI {
    static let userPaths: Set<String> = ["/api/v2/secrets", "/secrets", "/api/v2/update", "/update"]

    /// Secret names in one request, and the body size they fit in, are bounded by the body limit.

    func addUserRoutes(to router: Router<ClientRequestContext>) {
        router.get("/api/v2/secrets") { request, context in
            try await JSend.success(readSecrets(request, context, v1: false))
        }
        router.get("/secrets") { request, context in try await JSend.success(readSecrets(request, context, v1: true)) }
        router.post("/api/v2/secrets") { request, context in
            let body = try await request.body.collect(upTo: maximumBodySize)
            return try await JSend.success(writeSecrets(Array(buffer: body), context, v1: false))
        }
        router.post("/secrets") { request, context in
            let body = try await request.body.collect(upTo: maximumBodySize)
            return try await JSend.success(writeSecrets(Array(buffer: body), context, v1: true))
        }
        router.get("/api/v2/update") { _, _ in try await JSend.success(updateLog(v1: false)) }
        router.get("/update") { _, _ in try await JSend.success(updateLog(v1: true)) }
    }

    /// The manifest user presenting the request's client certificate.
    func user(_ context: ClientRequestContext) async throws -> User {
        let certificate = try? await context.channel.nioSSL_peerCertificate().get()?.toDERBytes()
        return try await coordinator.authenticate(certificate)
    }

    func readSecrets(_ request: Request, _ context: ClientRequestContext, v1: Bool) async throws -> JSONValue {
        let names = request.uri.queryParameters.getAll("s").map { String($0) }
        guard names.count <= ClientRequestBodies.maximumSecretNames else {
            throw RequestError("at most \(ClientRequestBodies.maximumSecretNames) secrets per request")
        }
        let user = try await user(context)
        let values = try await coordinator.secrets(names, for: user)
        let definitions = await coordinator.manifest?.manifest?.secrets ?? [:]
        let secrets = JSONValue.object(
            values.sorted { $0.key < $1.key }.map { name, value in
                JSONMember(name, Self.secretJSON(value, definition: definitions[name] ?? Manifest.Secret()))
            })
        logger.notice("secrets read", metadata: ["user": "\(user.name)", "secrets": "\(values.keys.sorted())"])
        return v1 ? secrets : .object([JSONMember("secrets", secrets)])
    }

    func writeSecrets(_ body: [UInt8], _ context: ClientRequestContext, v1: Bool) async throws -> JSONValue {
        let secrets = try ClientRequestBodies.secrets(body, wrapped: !v1)
        let user = try await user(context)
        try await coordinator.setSecrets(secrets, by: user)
        logger.notice("secrets written", metadata: ["user": "\(user.name)", "secrets": "\(secrets.keys.sorted())"])
        return .null
    }

    func updateLog(v1: Bool) async throws -> JSONValue {
        let lines = try await coordinator.updateLog().map { String(decoding: $0, as: UTF8.self) }
        if v1 { return .string(lines.map { $0 + "\n" }.joined()) }
        return .object([JSONMember("updateLog", .array(lines.map { .string($0) }))])
    }

    /// A secret as MarbleRun's `manifest.Secret` marshals it: bytes in standard base64, absent
    /// parts null.
    static func secretJSON(_ value: SecretValue, definition: Manifest.Secret) -> JSONValue {
        func bytes(_ part: [UInt8]) -> JSONValue { part.isEmpty ? .null : .bytes(part) }
        return .object([
            JSONMember("Type", .string(value.type)),
            JSONMember("Size", .number(String(definition.size ?? 0))),
            JSONMember("Shared", .bool(definition.shared)),
            JSONMember("UserDefined", .bool(definition.userDefined)),
            JSONMember("Cert", bytes(value.cert)),
            JSONMember("ValidFor", .number(String(definition.validFor ?? 0))),
            JSONMember("Private", bytes(value.privateKey)),
            JSONMember("Public", bytes(value.publicKey)),
        ])
    }
}
