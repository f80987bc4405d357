import Hummingbird
import Logging
import Prometheus

/// Prometheus text exposition on `GET /metrics`, plain HTTP on its own address (as MarbleRun).
enum MetricsEndpoint {
    static func application(registry: PrometheusCollectorRegistry, address: ListenAddress, logger: Logger)
        -> some ApplicationProtocol
    {
        let router = Router()
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        return Application(
            router: router,
            configuration: ApplicationConfiguration(address: .hostname(address.host, port: address.port)),
            onServerRunning: { _ in logger.notice("metrics listening", metadata: ["address": "\(address)"]) },
            logger: logger)
    }
}
