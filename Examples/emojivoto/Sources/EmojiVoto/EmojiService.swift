import Hummingbird
import Logging
import MarbleKit

/// The `emoji` marble: serves the ballot to cluster peers only (mutual TLS).
public enum EmojiService {
    public static func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/emojis") { _, _ in Emoji.all }
        router.get("/emoji") { request, _ -> Emoji in
            let shortcode = request.uri.queryParameters.get("shortcode") ?? ""
            guard let emoji = Emoji.all.first(where: { $0.shortcode == shortcode }) else {
                throw HTTPError(.notFound, message: "no emoji \(shortcode)")
            }
            return emoji
        }
        return router
    }

    /// Runs the marble: `EMOJIVOTO_LISTEN` (HOST:PORT) and the Coordinator-issued TLS.
    public static func run(environment: [String: String]) async throws {
        let settings = DemoEnvironment(environment)
        let tls = try MarbleTLS(environment: environment)
        try await serve(
            router(), name: "emoji", address: try settings.address("EMOJIVOTO_LISTEN"),
            tls: tls.serverConfiguration(), logger: Logger(label: "emoji"))
    }
}
