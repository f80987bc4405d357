import Attestation
import CoordinatorCore
import Crypto
import Foundation
import Hummingbird
import JSONText
import Logging
import Manifest
import Metrics
import NIOCore
import X509

/// The request context of the client API: it keeps the connection's channel so that handlers
/// can read the client certificate (users, issue 5).
public struct ClientRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = CoreRequestContextStorage(source: source)
        channel = source.channel
    }
}

/// The client REST API (compat §1): v2 with the JSend envelope and the v1 routes.
struct ClientAPI: Sendable {
    let coordinator: Coordinator
    let quoteIssuer: any QuoteIssuer
    let maximumBodySize: Int
    let logger: Logger
    var refusalLogLevel = Logger.Level.debug
    /// Nonces are echoed into report data after hashing; a limit keeps requests cheap.
    static let maximumNonceSize = 1024

    static let paths: Set<String> = Set([
        "/api/v2/status", "/api/v2/quote", "/api/v2/manifest", "/status", "/quote", "/manifest",
    ]).union(userPaths).union(updatePaths).union(featurePaths).union(replicaPaths)

    /// The recovery endpoints answer 409 outside recovery mode (RecoveryAPI serves them in it).
    static let recoveryPaths: [String: HTTPRequest.Method] = [
        "/api/v2/recover": .post, "/recover": .post, "/api/v2/recover/public-key": .get,
    ]

    /// The methods each path answers (the `Allow` header of a 405); a test checks it against the routes.
    static let allowedMethods: [String: [HTTPRequest.Method]] = {
        var methods: [String: [HTTPRequest.Method]] = [:]
        for path in paths { methods[path] = [.post] }
        for (path, method) in recoveryPaths { methods[path] = [method] }
        for path in [
            "/api/v2/status", "/status", "/api/v2/quote", "/quote", OpenAPIDocument.path,
        ] {
            methods[path] = [.get]
        }
        for path in [
            "/api/v2/manifest", "/manifest", "/api/v2/secrets", "/secrets", "/api/v2/update", "/update",
            "/api/v2/update-manifest", "/update-manifest",
        ] {
            methods[path] = [.get, .post]
        }
        return methods
    }()

    func router() -> Router<ClientRequestContext> {
        let router = Router(context: ClientRequestContext.self)
        router.add(
            middleware: JSendMiddleware(
                allowedMethods: Self.allowedMethods, logger: logger, refusalLogLevel: refusalLogLevel))
        router.add(middleware: SynchronizeMiddleware(coordinator: coordinator))
        router.get(RouterPath(OpenAPIDocument.path)) { _, _ in OpenAPIDocument.response() }
        router.get("/api/v2/status") { _, _ in try await JSend.success(status(v1: false)) }
        router.get("/status") { _, _ in try await JSend.success(status(v1: true)) }
        router.get("/api/v2/quote") { request, _ in try await JSend.success(quote(request, v1: false)) }
        router.get("/quote") { request, _ in try await JSend.success(quote(request, v1: true)) }
        router.get("/api/v2/manifest") { _, _ in try await JSend.success(manifest(v1: false)) }
        router.get("/manifest") { _, _ in try await JSend.success(manifest(v1: true)) }
        router.post("/api/v2/manifest") { request, _ in
            let body = try await request.body.collect(upTo: maximumBodySize)
            return try await JSend.success(setManifest(try ClientRequestBodies.manifest(Array(buffer: body))))
        }
        router.post("/manifest") { request, _ in
            let body = try await request.body.collect(upTo: maximumBodySize)
            return try await JSend.success(setManifest(Array(buffer: body)))
        }
        addUserRoutes(to: router)
        addUpdateRoutes(to: router)
        addFeatureRoutes(to: router)
        addReplicaRoutes(to: router)
        for (path, method) in Self.recoveryPaths {
            router.on(RouterPath(path), method: method) { _, _ -> Response in throw Self.notInRecovery }
        }
        return router
    }

    static let notInRecovery = CoordinatorError(
        .wrongState, "the Coordinator is not in recovery mode: there is nothing to recover")

    func status(v1: Bool) async throws -> JSONValue {
        let state = await coordinator.state
        return .object([
            JSONMember(v1 ? "StatusCode" : "code", .integer(state.rawValue)),
            JSONMember(v1 ? "StatusMessage" : "message", .string(state.message)),
        ])
    }

    /// The Coordinator's certificate chain and a quote whose report data is SHA-256 of the root
    /// certificate's DER, followed by the nonce when one is given.
    func quote(_ request: Request, v1: Bool) async throws -> JSONValue {
        let pki = await coordinator.pki
        let chain = try pki.intermediate.serializeAsPEM().pemString + "\n" + pki.root.serializeAsPEM().pemString + "\n"
        return try Self.quoteAnswer(
            request, rootDER: try pki.root.derBytes(), chainPEM: chain, quoteIssuer: quoteIssuer, logger: logger, v1: v1
        )
    }

    /// `{cert, quote}` for `rootDER` and the request's optional `nonce` (URL-safe base64).
    static func quoteAnswer(
        _ request: Request, rootDER: [UInt8], chainPEM: String, quoteIssuer: any QuoteIssuer, logger: Logger, v1: Bool
    ) throws -> JSONValue {
        var nonce: [UInt8] = []
        if let text = request.uri.queryParameters.get("nonce") {
            guard let decoded = Base64.decodeURL(text) else {
                throw RequestError("the nonce is not URL-safe base64")
            }
            guard decoded.count <= Self.maximumNonceSize else {
                throw RequestError("the nonce is longer than \(Self.maximumNonceSize) bytes")
            }
            nonce = decoded
        }
        let reportData = Array(SHA256.hash(data: rootDER + nonce))
        let quote: [UInt8]
        do throws(AttestationError) {
            quote = try quoteIssuer.issueQuote(reportData: reportData)
        } catch {
            logger.error("issuing the Coordinator's quote failed", metadata: ["reason": "\(error.message)"])
            throw CoordinatorError(.internalFailure, "the Coordinator could not produce a quote")
        }
        return .object([
            JSONMember(v1 ? "Cert" : "cert", .string(chainPEM)), JSONMember(v1 ? "Quote" : "quote", .bytes(quote)),
        ])
    }

    func manifest(v1: Bool) async throws -> JSONValue {
        let document = await coordinator.manifest
        let signature = try await coordinator.manifestSignature()
        return .object([
            JSONMember(
                v1 ? "ManifestSignatureRootECDSA" : "manifestSignatureRootECDSA", signature.map { .bytes($0) } ?? .null),
            JSONMember(v1 ? "ManifestSignature" : "manifestFingerprint", .string(document?.fingerprint ?? "")),
            JSONMember(v1 ? "Manifest" : "manifest", document.map { .bytes($0.jsonBytes) } ?? .null),
        ])
    }

    func setManifest(_ bytes: [UInt8]) async throws -> JSONValue {
        let result = try await coordinator.setManifest(bytes)
        let fingerprint = await coordinator.manifest?.fingerprint ?? ""
        logger.notice(
            "manifest set", metadata: ["fingerprint": "\(fingerprint)", "warnings": "\(result.warnings.count)"])
        for warning in result.warnings {
            logger.warning("manifest warning", metadata: ["problem": "\(warning.description)"])
        }
        return .object([
            JSONMember("RecoverySecrets", Self.recoverySecrets(result.recoverySecrets)),
            JSONMember("Warnings", .array(result.warnings.map { .string($0.description) })),
        ])
    }
}

/// Replicas: every request is answered from the state as the shared store has it now.
struct SynchronizeMiddleware<Context: RequestContext>: RouterMiddleware {
    let coordinator: Coordinator

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        try await coordinator.synchronize()
        return try await next(request, context)
    }
}

/// Turns every refusal into a JSend answer and records request latency by route.
struct JSendMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Every path the API answers, with its methods.
    let allowedMethods: [String: [HTTPRequest.Method]]
    let logger: Logger
    let refusalLogLevel: Logger.Level

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let start = ContinuousClock.now
        let response: Response
        do {
            response = try await next(request, context)
        } catch let error as RequestError {
            response = JSend.failure(error.status, error.message)
        } catch let error as CoordinatorError {
            if error.httpStatus.code >= 500 {
                logger.error("request failed", metadata: ["path": "\(request.uri.path)", "reason": "\(error.message)"])
            }
            response = JSend.failure(error.httpStatus, error.message)
        } catch is NIOTooManyBytesError {
            response = JSend.failure(.contentTooLarge, "the request body is larger than the limit")
        } catch let error as HTTPError {
            if error.status == .notFound, let allowed = allowedMethods[request.uri.path] {
                let allow = allowed.map(\.rawValue).joined(separator: ", ")
                var refusal = JSend.failure(
                    .methodNotAllowed,
                    "\(request.method.rawValue) is not allowed on \(request.uri.path) (allowed: \(allow))")
                refusal.headers[.allow] = allow
                response = refusal
            } else if error.status == .contentTooLarge {
                response = JSend.failure(error.status, "the request body is too large")
            } else {
                response = JSend.failure(error.status, error.body ?? error.status.reasonPhrase)
            }
        } catch {
            logger.error("request failed", metadata: ["path": "\(request.uri.path)", "error": "\(type(of: error))"])
            response = JSend.failure(.internalServerError, "internal error")
        }
        let route = allowedMethods[request.uri.path] != nil ? request.uri.path : "other"
        if (400..<500).contains(response.status.code) {
            // The path as routed (never the query, which may carry a nonce) and the status.
            logger.log(
                level: refusalLogLevel, "request refused",
                metadata: [
                    "path": "\(route)", "method": "\(request.method.rawValue)", "status": "\(response.status.code)",
                ])
        }
        Timer(
            label: "coordinator_http_request_duration_seconds",
            dimensions: [
                ("path", route), ("method", request.method.rawValue), ("status", String(response.status.code)),
            ],
            preferredDisplayUnit: .seconds
        ).recordElapsed(since: start)
        return response
    }
}

extension Timer {
    func recordElapsed(since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
    }
}
