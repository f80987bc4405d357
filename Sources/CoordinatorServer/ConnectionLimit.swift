import HummingbirdCore
import HummingbirdTLS
import Logging
import Metrics
import NIOCore
import Synchronization

/// A cap on one listener's open connections. A connection over the cap is closed as soon as it
/// is accepted, before any TLS work; each refusal counts in
/// `coordinator_connections_refused_total{listener}`, and a warning is logged at most every ten
/// seconds while refusals go on. `coordinator_connections_open{listener}` shows the count.
///
/// Without it a peer that opens connections and never speaks holds descriptors and memory until
/// the idle timeout, and enough of them exhaust the process's descriptors for both listeners.
final class ConnectionLimit: Sendable {
    let listener: String
    let maximum: Int
    private let logger: Logger
    private let open = Atomic<Int>(0)
    /// Refusals since the last warning, and when that was.
    private let refusals = Mutex<(count: Int, lastWarning: ContinuousClock.Instant?)>((0, nil))
    private let openGauge: Gauge
    private let refusedCounter: Counter
    private let trimmer: HeapTrimmer?
    static let warningInterval: Duration = .seconds(10)

    /// `trimmer` hears of every connection that closes.
    init(listener: String, maximum: Int, logger: Logger, trimmer: HeapTrimmer? = nil) {
        self.listener = listener
        self.maximum = maximum
        self.logger = logger
        self.trimmer = trimmer
        openGauge = Gauge(label: "coordinator_connections_open", dimensions: [("listener", listener)])
        refusedCounter = Counter(label: "coordinator_connections_refused_total", dimensions: [("listener", listener)])
        openGauge.record(0)
    }

    /// Counts `channel` until it closes and returns true, or closes it and returns false when the
    /// listener already has `maximum` open.
    func admit(_ channel: any Channel) -> Bool {
        let count = open.wrappingAdd(1, ordering: .relaxed).newValue
        guard count <= maximum else {
            open.wrappingSubtract(1, ordering: .relaxed)
            channel.close(promise: nil)
            refused()
            return false
        }
        openGauge.record(count)
        channel.closeFuture.whenComplete { [self] _ in
            openGauge.record(open.wrappingSubtract(1, ordering: .relaxed).newValue)
            trimmer?.connectionClosed()
        }
        return true
    }

    private func refused() {
        refusedCounter.increment()
        let now = ContinuousClock.now
        let report: Int? = refusals.withLock { state in
            state.count += 1
            if let last = state.lastWarning, now - last < Self.warningInterval { return nil }
            defer { state = (0, now) }
            return state.count
        }
        if let report {
            logger.warning(
                "connection limit reached: new connections are closed until some end",
                metadata: ["listener": "\(listener)", "limit": "\(maximum)", "refused": "\(report)"])
        }
    }
}

/// The connection refused by a listener at its cap (the accept's initializer fails with it).
struct ConnectionLimitReached: Error {}

/// A Hummingbird child channel that counts against a ``ConnectionLimit`` before its base channel
/// (TLS, HTTP) is set up.
struct ConnectionLimitedChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base
    let limit: ConnectionLimit

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        guard limit.admit(channel) else { return channel.eventLoop.makeFailedFuture(ConnectionLimitReached()) }
        return base.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

extension ConnectionLimitedChannel: HTTPChannelHandler where Base: HTTPChannelHandler {
    var responder: HTTPChannelHandler.Responder { base.responder }
}

extension HTTPServerBuilder {
    /// HTTP/1.1 over TLS, every accepted connection counted against `limit` before TLS starts.
    static func limitedTLS(
        http: HTTP1Channel.Configuration, tls: TLSChannelConfiguration, limit: ConnectionLimit
    ) -> HTTPServerBuilder {
        .init { responder in
            ConnectionLimitedChannel(
                base: try TLSChannel(HTTP1Channel(responder: responder, configuration: http), configuration: tls),
                limit: limit)
        }
    }
}
