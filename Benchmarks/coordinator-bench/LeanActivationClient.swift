import MeshAPI
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import NIOSSL
import SwiftProtobuf

/// A minimal unary gRPC client on NIO HTTP/2, for load generation only. Like the bare handshake
/// baseline's client, it builds each marble's TLS context once; grpc-swift's client transport
/// builds a new one per connection, which on this 2-core machine takes CPU from the Coordinator
/// under test. Each activation is still a new TCP + mutual-TLS + HTTP/2 connection.
enum LeanActivationClient {
    static func makeContext(certificate: [UInt8], key: [UInt8]) throws -> NIOSSLContext {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .none
        tls.certificateChain = [.certificate(try NIOSSLCertificate(bytes: certificate, format: .der))]
        tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: key, format: .der))
        tls.applicationProtocols = ["h2"]
        return try NIOSSLContext(configuration: tls)
    }

    static func activate(_ request: Rpc_ActivationReq, port: Int, context: NIOSSLContext) async throws
        -> Rpc_ActivationResp
    {
        let message: [UInt8] = try request.serializedBytes()
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let response = loop.makePromise(of: [UInt8].self)
        let channel = try await ClientBootstrap(group: loop).channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(
                    NIOSSLClientHandler(context: context, serverHostname: nil))
                _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                    mode: .client, connectionConfiguration: .init(), streamConfiguration: .init()
                ) { $0.eventLoop.makeSucceededVoidFuture() }
            }
        }.connect(host: "127.0.0.1", port: port).get()
        defer { channel.close(promise: nil) }
        try await loop.flatSubmit {
            do {
                let multiplexer = try channel.pipeline.syncOperations.handler(type: NIOHTTP2Handler.self)
                    .syncMultiplexer()
                return multiplexer.createStreamChannel { stream in
                    stream.eventLoop.makeCompletedFuture {
                        try stream.pipeline.syncOperations.addHandler(
                            UnaryCall(message: message, authority: "127.0.0.1:\(port)", response: response))
                    }
                }.map { _ in }
            } catch {
                return loop.makeFailedFuture(error)
            }
        }.get()
        return try Rpc_ActivationResp(serializedBytes: try await response.futureResult.get())
    }

    struct CallError: Error, CustomStringConvertible {
        var description: String
    }

    /// Sends one length-prefixed message and collects the reply until the trailers.
    final class UnaryCall: ChannelInboundHandler {
        typealias InboundIn = HTTP2Frame.FramePayload
        typealias OutboundOut = HTTP2Frame.FramePayload

        let message: [UInt8]
        let authority: String
        let response: EventLoopPromise<[UInt8]>
        var received: [UInt8] = []
        var finished = false

        init(message: [UInt8], authority: String, response: EventLoopPromise<[UInt8]>) {
            self.message = message
            self.authority = authority
            self.response = response
        }

        func channelActive(context: ChannelHandlerContext) {
            let headers: HPACKHeaders = [
                ":method": "POST", ":scheme": "https", ":path": "/rpc.Marble/Activate", ":authority": authority,
                "content-type": "application/grpc", "te": "trailers",
            ]
            context.write(wrapOutboundOut(.headers(.init(headers: headers))), promise: nil)
            var buffer = context.channel.allocator.buffer(capacity: message.count + 5)
            buffer.writeInteger(UInt8(0))
            buffer.writeInteger(UInt32(message.count))
            buffer.writeBytes(message)
            context.writeAndFlush(
                wrapOutboundOut(.data(.init(data: .byteBuffer(buffer), endStream: true))), promise: nil)
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .data(let frame):
                if case .byteBuffer(var buffer) = frame.data {
                    received += buffer.readBytes(length: buffer.readableBytes) ?? []
                }
            case .headers(let frame) where frame.endStream:
                let status = frame.headers.first(name: "grpc-status")
                if status == "0", received.count >= 5 {
                    finish(.success(Array(received.dropFirst(5))))
                } else {
                    let reason = frame.headers.first(name: "grpc-message") ?? ""
                    finish(.failure(CallError(description: "grpc-status \(status ?? "none"): \(reason)")))
                }
            default:
                break
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            finish(.failure(CallError(description: "the stream closed before the trailers")))
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            finish(.failure(error))
            context.close(promise: nil)
        }

        private func finish(_ result: Result<[UInt8], any Error>) {
            guard !finished else { return }
            finished = true
            response.completeWith(result)
        }
    }
}
