import NIOCore
import NIOSSL

/// Closes a mesh connection on which nothing was read or written for the timeout, whether its
/// TLS handshake stalled (nothing decrypted reaches this handler, which sits after the
/// `NIOSSLHandler`) or it finished and the peer fell silent.
///
/// The gRPC transport's own `maxIdleTime` never fires on TLS connections (grpc-swift-nio-transport
/// 2.x starts its timer on `channelActive`, which has passed by the time the HTTP/2 handlers are
/// added after ALPN), so without this a peer could hold descriptors and memory for ever.
final class IdleConnectionCloser: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .all = event as? IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Puts an idle timer and the closer behind the channel's `NIOSSLHandler`.
    static func install(on channel: any Channel, timeout: Duration) -> EventLoopFuture<Void> {
        channel.eventLoop.submit {
            let operations = channel.pipeline.syncOperations
            let tls = try operations.handler(type: NIOSSLHandler.self)
            let idle = IdleStateHandler(allTimeout: TimeAmount(timeout))
            try operations.addHandler(idle, position: .after(tls))
            try operations.addHandler(IdleConnectionCloser(), position: .after(idle))
        }
    }
}
