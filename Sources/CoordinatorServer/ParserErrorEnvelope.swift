import HTTPTypes
import HummingbirdCore
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// Gives the 400 that answers a request the HTTP/1.1 parser refused (headers over the limits,
/// a malformed request line) a JSend body, as every other answer of the API has.
///
/// Hummingbird answers such a request itself, before any router sees it, with an empty 400 and
/// closes the connection; this handler, between the HTTP codec and Hummingbird, notes the parser
/// error on its way in and puts the envelope into that 400 on its way out.
final class ParserErrorEnvelope: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private var parserError: HTTPParserError?

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? HTTPParserError { parserError = error }
        context.fireErrorCaught(error)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard let error = parserError, case .head(var head) = unwrapOutboundIn(data), head.status == .badRequest
        else {
            context.write(data, promise: promise)
            return
        }
        parserError = nil
        let message = Self.message(for: error)
        let body = context.channel.allocator.buffer(bytes: JSend.envelope(.badRequest, message).serialized())
        head.headerFields[.contentType] = "application/json"
        head.headerFields[.contentLength] = String(body.readableBytes)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: promise)
    }

    static func message(for error: HTTPParserError) -> String {
        switch error {
        case .headerOverflow:
            return
                "the request's headers are too large (at most \(CoordinatorServer.maximumHeaderFieldSize >> 10) KiB a field and \(CoordinatorServer.maximumHeaderListSize >> 10) KiB in all, the request line included)"
        default:
            return "the request is not valid HTTP/1.1 (\(error))"
        }
    }
}
