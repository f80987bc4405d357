import Attestation
import CoordinatorCore
import Crypto
import Foundation
import Hummingbird
import JSONText
import Logging
import Manifest
import ServiceLifecycle
import X509

/// The client API in recovery mode (state 1, compat §1): status, a quote over a temporary
/// certificate, the ephemeral recovery key and `recover`. Everything else waits for recovery.
struct RecoveryAPI: Sendable {
    let recovery: RecoveryCoordinator
    let quoteIssuer: any QuoteIssuer
    /// The temporary self-signed certificate the API serves until recovery (DER).
    let certificate: [UInt8]
    let logger: Logger
    /// The options the new state will check the manifest with (the Coordinator's strictness).
    let manifestOptions: ManifestOptions
    /// Discards the sealed state and sets `manifest` on a new one (the explicit overwrite).
    let overwrite: @Sendable (_ manifest: [UInt8]) async throws -> Coordinator.ManifestResult
    let refusalLogLevel: Logger.Level
    /// MarbleRun reads at most 20 KiB of a recovery request.
    static let maximumBodySize = 20 << 10

    static let paths = Set(ClientAPI.recoveryPaths.keys)

    /// The methods each path answers in recovery mode (the `Allow` header of a 405): the same as
    /// in every other state, most of them with 409 until the state is recovered.
    static var allowedMethods: [String: [HTTPRequest.Method]] { ClientAPI.allowedMethods }

    /// What recovery mode serves; every other route of the client API answers 409.
    static let served: Set<String> = [
        "GET /api/v2/status", "GET /status", "GET /api/v2/quote", "GET /quote", "GET \(OpenAPIDocument.path)",
        "GET /api/v2/recover/public-key", "POST /api/v2/recover", "POST /recover", "POST /api/v2/manifest",
    ]

    func router() -> Router<ClientRequestContext> {
        let router = Router(context: ClientRequestContext.self)
        router.add(
            middleware: JSendMiddleware(
                allowedMethods: Self.allowedMethods, logger: logger, refusalLogLevel: refusalLogLevel))
        router.get(RouterPath(OpenAPIDocument.path)) { _, _ in OpenAPIDocument.response() }
        router.get("/api/v2/status") { _, _ in JSend.success(status(v1: false)) }
        router.get("/status") { _, _ in JSend.success(status(v1: true)) }
        router.get("/api/v2/quote") { request, _ in
            try JSend.success(
                ClientAPI.quoteAnswer(
                    request, rootDER: certificate, chainPEM: pem(), quoteIssuer: quoteIssuer, logger: logger, v1: false)
            )
        }
        router.get("/quote") { request, _ in
            try JSend.success(
                ClientAPI.quoteAnswer(
                    request, rootDER: certificate, chainPEM: pem(), quoteIssuer: quoteIssuer, logger: logger, v1: true))
        }
        router.get("/api/v2/recover/public-key") { _, _ in
            JSend.success(
                .object([
                    JSONMember("algorithm", .string("RSA")),
                    JSONMember("ephemeralPublicKey", .bytes(await recovery.ephemeralPublicKey)),
                ]))
        }
        for path in ["/api/v2/recover", "/recover"] {
            router.post(RouterPath(path)) { request, _ in
                let body = try await request.body.collect(upTo: Self.maximumBodySize)
                return try await JSend.success(recover(Array(buffer: body)))
            }
        }
        router.post("/api/v2/manifest") { request, _ in
            let body = try await request.body.collect(upTo: 12 << 20)
            return try await JSend.success(overwriteManifest(Array(buffer: body)))
        }
        // The rest of the client API exists, but not before recovery.
        for (path, methods) in ClientAPI.allowedMethods {
            for method in methods where !Self.served.contains("\(method.rawValue) \(path)") {
                router.on(RouterPath(path), method: method) { _, _ -> Response in throw Self.notYet }
            }
        }
        return router
    }

    static let notYet = CoordinatorError(
        .wrongState, "the Coordinator is in recovery mode: post the recovery secrets (marblerun recover) first")

    /// `{"manifest": base64, "overwriteSealedState": true}`: only with the explicit flag does a
    /// new manifest replace the sealed state, which is then gone for good.
    func overwriteManifest(_ body: [UInt8]) async throws -> JSONValue {
        let manifest = try ClientRequestBodies.overwritingManifest(body)
        // Nothing is discarded for a manifest that would be refused: checked exactly as the
        // fresh state will check it.
        let document = ManifestDocument.parse(manifest, options: manifestOptions)
        guard document.isValid else {
            let summary = document.errors.prefix(20).map(\.description).joined(separator: "; ")
            throw CoordinatorError(.invalidManifest, "the manifest has \(document.errors.count) error(s): \(summary)")
        }
        let result = try await overwrite(manifest)
        logger.warning("the sealed state was discarded on request and a new manifest set")
        return .object([
            JSONMember("RecoverySecrets", ClientAPI.recoverySecrets(result.recoverySecrets)),
            JSONMember("Warnings", .array(result.warnings.map { .string($0.description) })),
        ])
    }

    func status(v1: Bool) -> JSONValue {
        let state = Coordinator.State.recovery
        return .object([
            JSONMember(v1 ? "StatusCode" : "code", .integer(state.rawValue)),
            JSONMember(v1 ? "StatusMessage" : "message", .string(state.message)),
        ])
    }

    private func pem() throws -> String {
        try Certificate(derEncoded: certificate).serializeAsPEM().pemString + "\n"
    }

    /// `{"recoverySecret": base64, "recoverySecretSignature": base64}` → `{remaining, message}`.
    func recover(_ body: [UInt8]) async throws -> JSONValue {
        let (secret, signature) = try ClientRequestBodies.recoverySecret(body)
        let remaining = try await recovery.recover(secret: secret, signature: signature)
        logger.notice("recovery secret accepted", metadata: ["remaining": "\(remaining)"])
        let message =
            remaining == 0
            ? "Recovery successful."
            : "Secret was processed successfully. Upload the next secret. Remaining secrets: \(remaining)"
        return .object([JSONMember("remaining", .integer(remaining)), JSONMember("message", .string(message))])
    }
}

/// Ends the recovery server's service group once the state is recovered.
struct RecoveryWatcher: Service {
    let recovery: RecoveryCoordinator

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            if await recovery.isRecovered { return }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }
}

extension CoordinatorServer {
    /// Serves the recovery API until the state is recovered (true) or a signal stops the
    /// Coordinator (false).
    func serveRecovery(
        _ recovery: RecoveryCoordinator, quoteIssuer: any QuoteIssuer,
        overwrite: @escaping @Sendable ([UInt8]) async throws -> Coordinator.ManifestResult
    ) async throws -> Bool {
        let needed = await recovery.remaining
        logger.error(
            "RECOVERY MODE: the sealed state cannot be opened on this machine",
            metadata: ["reason": "\(recovery.reason)", "needed": "\(needed)"])
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("MarbleRun Coordinator - Recovery") }
        let now = Date()
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: now - 300,
            notValidAfter: now + 86_400, issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                SubjectAlternativeNames(configuration.dnsNames.map { .dnsName($0) })
            }, issuerPrivateKey: .init(key))
        let der = try certificate.derBytes()
        let api = RecoveryAPI(
            recovery: recovery, quoteIssuer: quoteIssuer, certificate: der, logger: logger,
            manifestOptions: ManifestOptions(strict: configuration.strictManifest), overwrite: overwrite,
            refusalLogLevel: configuration.httpErrorLogLevel)
        let client = try clientApplication(api.router(), certificate: der, key: Array(key.derRepresentation))
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [
                    .init(service: client),
                    .init(
                        service: RecoveryWatcher(recovery: recovery),
                        successTerminationBehavior: .gracefullyShutdownGroup),
                ], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        return await recovery.isRecovered
    }
}
