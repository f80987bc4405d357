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
    static let maximumSecretNames = 256

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
        guard names.count <= Self.maximumSecretNames else {
            throw RequestError("at most \(Self.maximumSecretNames) secrets per request")
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
        let secrets = try Self.userSecrets(body, wrapped: !v1)
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

    /// The secrets of a POST body: v2 `{"secrets": {name: {Cert, Private, Key}}}`, v1 the bare
    /// map. Field names match without regard to case, as in Go; unknown fields are refused.
    /// `Cert` is base64 DER or a PEM certificate; `Private` and `Key` are base64.
    static func userSecrets(_ body: [UInt8], wrapped: Bool) throws -> [String: UserSecret] {
        let value: JSONValue
        do {
            value = try JSONParser(maximumDepth: 8).parse(body)
        } catch {
            throw RequestError("the request body is not JSON: \(error.description)")
        }
        var map = value
        if wrapped {
            guard case .object(let members) = value, members.count == 1, members[0].key.lowercased() == "secrets" else {
                throw RequestError("the request body must be {\"secrets\": {NAME: {\"Cert\", \"Private\", \"Key\"}}}")
            }
            map = members[0].value
        }
        guard case .object(let entries) = map else {
            throw RequestError("\"secrets\" must be an object of secret names")
        }
        guard entries.count <= maximumSecretNames else {
            throw RequestError("at most \(maximumSecretNames) secrets per request")
        }
        var secrets: [String: UserSecret] = [:]
        for entry in entries {
            let name = String(entry.key.prefix(64))
            guard secrets[entry.key] == nil else { throw RequestError("secret \(name) appears twice") }
            guard case .object(let fields) = entry.value else {
                throw RequestError("secret \(name) must be an object with Cert, Private or Key")
            }
            var secret = UserSecret()
            for field in fields {
                if case .null = field.value { continue }
                guard case .string(let text) = field.value else {
                    throw RequestError("secret \(name): \(field.key.prefix(32)) must be a string")
                }
                switch field.key.lowercased() {
                case "cert":
                    guard let der = text.hasPrefix("-----BEGIN") ? pemCertificate(text) : Base64.decode(text) else {
                        throw RequestError("secret \(name): Cert must be base64 DER or a PEM certificate")
                    }
                    secret.cert = der
                case "private":
                    guard let der = Base64.decode(text) else {
                        throw RequestError("secret \(name): Private must be standard base64")
                    }
                    secret.privateKey = der
                case "key":
                    guard let key = Base64.decode(text) else {
                        throw RequestError("secret \(name): Key must be standard base64")
                    }
                    secret.key = key
                default:
                    throw RequestError(
                        "secret \(name): unknown field \"\(field.key.prefix(32))\"; a secret has Cert, Private and Key")
                }
            }
            secrets[entry.key] = secret
        }
        return secrets
    }

    private static func pemCertificate(_ text: String) -> [UInt8]? {
        guard let document = try? PEMDocument(pemString: text), document.discriminator == "CERTIFICATE" else {
            return nil
        }
        return document.derBytes
    }
}
