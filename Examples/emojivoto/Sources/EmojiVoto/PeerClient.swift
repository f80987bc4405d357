import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Calls another marble of the cluster over mutual TLS: this marble's certificate is presented
/// and the peer's must chain to the cluster root and name the host.
struct PeerClient: Sendable {
    let client: HTTPClient
    let name: String
    let baseURL: String

    /// The peer's answer: the HTTP status and the decoded body when it was a success.
    func call<T: Decodable & Sendable>(_ method: HTTPMethod, _ path: String, as type: T.Type) async throws -> T? {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .seconds(5))
        } catch {
            throw DemoError("the \(name) marble at \(baseURL) cannot be reached over mTLS: \(error)")
        }
        let body = try await response.body.collect(upTo: 1 << 20)
        if response.status == .notFound { return nil }
        guard response.status == .ok else {
            throw DemoError("the \(name) marble answered \(response.status.code) to \(method) \(path)")
        }
        return try JSONDecoder().decode(T.self, from: Data(buffer: body))
    }
}
