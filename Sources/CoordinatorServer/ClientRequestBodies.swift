import CoordinatorCore
import JSONText
import SwiftASN1

/// How the client API reads each request body. The routes call these and so do the fuzz
/// targets, so the decoding that is fuzzed is the decoding that is served. Bad input throws an
/// error the API answers with a 4xx status.
public enum ClientRequestBodies {
    /// At most this many secrets in one `POST /api/v2/secrets`.
    public static let maximumSecretNames = 256

    /// The manifest of a v2 body `{"manifest": base64}` (`POST /api/v2/manifest`, `/api/v2/update`,
    /// `/api/v2/update-manifest`). Go matches field names without regard to case, so we do too;
    /// any other field is refused.
    public static func manifest(_ body: [UInt8]) throws -> [UInt8] {
        try RequestBody.base64(RequestBody.fields(body, allowed: ["manifest"]), "manifest", shown: "manifest")
    }

    /// The secrets of a POST body: v2 `{"secrets": {name: {Cert, Private, Key}}}`, v1 the bare
    /// map. Field names match without regard to case, as in Go; unknown fields are refused.
    /// `Cert` is base64 DER or a PEM certificate; `Private` and `Key` are base64.
    public static func secrets(_ body: [UInt8], wrapped: Bool) throws -> [String: UserSecret] {
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

    /// The quote of `POST /api/v2/sign-quote`: `{"sgxQuote": base64}`.
    public static func signQuote(_ body: [UInt8]) throws -> [UInt8] {
        try RequestBody.base64(RequestBody.fields(body, allowed: ["sgxquote"]), "sgxquote", shown: "sgxQuote")
    }

    /// `POST /api/v2/monotonic-counter`: `{"name": string, "value": integer}`.
    public static func monotonicCounter(_ body: [UInt8]) throws -> (name: String, value: UInt64) {
        let fields = try RequestBody.fields(body, allowed: ["name", "value"])
        guard case .string(let name)? = fields["name"] else { throw RequestError("\"name\" must be a string") }
        guard case .number(let text)? = fields["value"], let value = UInt64(text) else {
            throw RequestError("\"value\" must be an integer from 0 to 18446744073709551615")
        }
        return (name, value)
    }

    /// `POST /api/v2/recover`: `{"recoverySecret": base64, "recoverySecretSignature": base64}`.
    public static func recoverySecret(_ body: [UInt8]) throws -> (secret: [UInt8], signature: [UInt8]) {
        let fields = try RequestBody.fields(body, allowed: ["recoverysecret", "recoverysecretsignature"])
        let secret = try RequestBody.base64(fields, "recoverysecret", shown: "recoverySecret")
        let signature = try RequestBody.base64(fields, "recoverysecretsignature", shown: "recoverySecretSignature")
        return (secret, signature)
    }

    /// The manifest of `POST /api/v2/manifest` in recovery mode, `{"manifest": base64,
    /// "overwriteSealedState": true}`: only with the explicit flag does a new manifest replace
    /// the sealed state, which is then gone for good.
    public static func overwritingManifest(_ body: [UInt8]) throws -> [UInt8] {
        let fields = try RequestBody.fields(body, allowed: ["manifest", "overwritesealedstate"])
        guard case .bool(true)? = fields["overwritesealedstate"] else {
            throw CoordinatorError(
                .wrongState,
                "the Coordinator is in recovery mode: recover its state (marblerun recover), or discard it for good by sending the manifest with \"overwriteSealedState\": true (marblerun manifest set --overwrite-sealed-state)"
            )
        }
        return try RequestBody.base64(fields, "manifest", shown: "manifest")
    }

    /// `POST /api/v2/replica/key`: `{"quote": base64, "nonce": base64}`, a nonce of 16 to 64 bytes.
    public static func replicaKey(_ body: [UInt8]) throws -> (quote: [UInt8], nonce: [UInt8]) {
        let fields = try RequestBody.fields(body, allowed: ["quote", "nonce"])
        let quote = try RequestBody.base64(fields, "quote", shown: "quote")
        let nonce = try RequestBody.base64(fields, "nonce", shown: "nonce")
        guard (16...64).contains(nonce.count) else { throw RequestError("\"nonce\" must hold 16 to 64 bytes") }
        return (quote, nonce)
    }

    private static func pemCertificate(_ text: String) -> [UInt8]? {
        guard let document = try? PEMDocument(pemString: text), document.discriminator == "CERTIFICATE" else {
            return nil
        }
        return document.derBytes
    }
}
