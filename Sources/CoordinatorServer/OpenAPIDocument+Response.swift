import Hummingbird

extension OpenAPIDocument {
    /// Where the Coordinator serves the document, in every state.
    static let path = "/api/v2/openapi.json"

    static func response() -> Response {
        Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: json)))
    }
}
