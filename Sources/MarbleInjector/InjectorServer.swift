import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import NIOCertificateReloading
import NIOCore
import NIOSSL

/// The webhook over HTTPS: `POST /mutate` answers AdmissionReviews, `GET /healthz` says it runs.
/// A body that is no AdmissionReview gets 400 with the reason; the log names the pod and the
/// decision, never the pod's environment.
public struct InjectorServer: Sendable {
    public let mutator: PodMutator
    public let logger: Logger

    public init(mutator: PodMutator, logger: Logger) {
        self.mutator = mutator
        self.logger = logger
    }

    /// The answer to one request body (what `POST /mutate` sends back), or the reason it is malformed.
    public func answer(_ body: [UInt8]) throws(AdmissionReview.Malformed) -> [UInt8] {
        let review = try AdmissionReview(parsing: body)
        guard review.kind == "Pod" else {
            logger.warning(
                "not a Pod: admitted unchanged; the webhook should select Pods only",
                metadata: ["kind": "\(review.kind)", "name": "\(review.objectName)"])
            return review.response(.allowed([], message: "marble-injector changes Pods only"))
        }
        let decision = mutator.mutate(pod: review.object, namespace: review.namespace)
        let pod: Logger.Metadata = ["pod": "\(review.namespace)/\(review.objectName)", "uid": "\(review.uid)"]
        switch decision {
        case .allowed(_, let message): logger.info("pod admitted: \(message)", metadata: pod)
        case .denied(let reason): logger.notice("pod refused: \(reason)", metadata: pod)
        }
        return review.response(decision)
    }

    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/healthz") { _, _ in "ok\n" }
        router.post("/mutate") { request, _ -> Response in
            guard request.headers[.contentType]?.lowercased().hasPrefix("application/json") == true else {
                return Self.plain(.badRequest, "an AdmissionReview is sent as application/json\n")
            }
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: AdmissionReview.maximumSize)
            } catch {
                return Self.plain(
                    .contentTooLarge, "the AdmissionReview exceeds \(AdmissionReview.maximumSize) bytes\n")
            }
            do throws(AdmissionReview.Malformed) {
                let answer = try self.answer(Array(buffer: body))
                return Response(
                    status: .ok, headers: [.contentType: "application/json"],
                    body: ResponseBody(byteBuffer: ByteBuffer(bytes: answer)))
            } catch {
                self.logger.notice("malformed AdmissionReview refused", metadata: ["reason": "\(error.description)"])
                return Self.plain(.badRequest, error.description + "\n")
            }
        }
        return router
    }

    static func plain(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(
            status: status, headers: [.contentType: "text/plain; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    /// The HTTPS application on `host:port` with the certificate chain and key in PEM files
    /// (cert-manager's or the chart's Secret); TLS 1.2 or later. The files are read again every
    /// `reloadInterval`, so a renewed certificate (cert-manager rotates it in the mounted Secret)
    /// serves new handshakes without a restart; files that do not load keep the last good pair.
    public func application(
        host: String, port: Int, certificateFile: String, keyFile: String, reloadInterval: Duration = .seconds(60)
    ) throws -> some ApplicationProtocol {
        let reloader = TimedCertificateReloader(
            configuration: .init(
                refreshInterval: reloadInterval,
                certificateSource: .init(location: .file(path: certificateFile), format: .pem),
                privateKeySource: .init(location: .file(path: keyFile), format: .pem)
            ) { [logger] configuration in
                configuration.onCertificateLoaded = { diff in
                    guard diff.previousX509CertificateChain != nil else { return }
                    logger.notice(
                        "TLS certificate reloaded",
                        metadata: ["subject": "\(diff.currentX509CertificateChain.first?.subject.description ?? "")"])
                }
                configuration.onCertificateLoadFailed = { failure in
                    logger.warning(
                        "TLS certificate not reloaded; serving the last one", metadata: ["reason": "\(failure.error)"])
                }
            })
        // Loaded now, so that the first handshake has them and a missing file stops the start.
        try reloader.reload()
        var tls = try TLSConfiguration.makeServerConfiguration(certificateReloader: reloader)
        tls.minimumTLSVersion = .tlsv12
        return Application(
            router: router(),
            server: try .tls(.http1(), tlsConfiguration: tls),
            configuration: ApplicationConfiguration(
                address: .hostname(host, port: port), serverName: "marble-injector"),
            services: [reloader],
            onServerRunning: { [logger] channel in
                logger.notice("marble-injector listening", metadata: ["address": "\(host):\(port)"])
            },
            logger: logger)
    }
}
