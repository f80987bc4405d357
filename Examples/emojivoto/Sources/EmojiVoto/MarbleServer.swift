import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import MarbleKit
import NIOSSL

/// Settings a demo marble reads from the environment its manifest gives it.
public struct DemoEnvironment: Sendable {
    public let values: [String: String]

    public init(_ values: [String: String]) { self.values = values }

    /// The value of `name`, or an error naming the manifest entry to add.
    public func required(_ name: String) throws -> String {
        guard let value = values[name], !value.isEmpty else {
            throw DemoError("\(name) is not set: the manifest's Parameters.Env must give it")
        }
        return value
    }

    /// HOST:PORT from `name`.
    public func address(_ name: String) throws -> (host: String, port: Int) {
        let text = try required(name)
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (1...65535).contains(port)
        else { throw DemoError("\(name)=\(text) is not HOST:PORT") }
        return (String(text[..<colon]), port)
    }
}

/// A demo marble's error: one sentence for the log.
public struct DemoError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Serves `router` over HTTPS with the marble's TLS until SIGTERM/SIGINT.
func serve(
    _ router: Router<BasicRequestContext>, name: String, address: (host: String, port: Int), tls: TLSConfiguration,
    logger: Logger
) async throws {
    let application = Application(
        router: router,
        server: try .tls(.http1(), tlsConfiguration: tls),
        configuration: ApplicationConfiguration(
            address: .hostname(address.host, port: address.port), serverName: "emojivoto-\(name)"),
        onServerRunning: { _ in logger.notice("\(name) listening on \(address.host):\(address.port) (HTTPS)") },
        logger: logger)
    try await application.runService()
}

/// Runs one demo marble with this process's environment; on failure prints why and exits 1.
public func runMarble(_ name: String, _ body: ([String: String]) async throws -> Void) async -> Never {
    do {
        try await body(ProcessInfo.processInfo.environment)
        exit(0)
    } catch {
        FileHandle.standardError.write(Data("emojivoto-\(name): \(error)\n".utf8))
        exit(1)
    }
}

extension Emoji: ResponseEncodable {}
extension Tally: ResponseEncodable {}
extension LeaderboardEntry: ResponseEncodable {}
