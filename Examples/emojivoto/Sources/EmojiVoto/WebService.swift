import AsyncHTTPClient
import Hummingbird
import Logging
import MarbleKit
import NIOCore
import NIOHTTP1

/// The `web` marble: the public HTTPS page and JSON API. It asks the `emoji` marble for the
/// ballot and the `voting` marble for the tallies, both over mutual TLS inside the cluster.
public enum WebService {
    static func router(emoji: PeerClient, voting: PeerClient) -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: page)))
        }
        router.get("/api/list") { _, _ in
            try await emoji.call(.GET, "/emojis", as: [Emoji].self) ?? []
        }
        router.post("/api/vote") { request, _ -> LeaderboardEntry in
            let choice = request.uri.queryParameters.get("choice") ?? ""
            guard !choice.isEmpty, choice.count <= 64,
                let picked = try await emoji.call(.GET, "/emoji?shortcode=\(escaped(choice))", as: Emoji.self)
            else { throw HTTPError(.badRequest, message: "\(choice.prefix(64)) is not on the ballot") }
            guard let tally = try await voting.call(.POST, "/vote?shortcode=\(escaped(choice))", as: Tally.self) else {
                throw HTTPError(.badGateway, message: "the voting marble did not count the vote")
            }
            return LeaderboardEntry(shortcode: picked.shortcode, unicode: picked.unicode, votes: tally.votes)
        }
        router.get("/api/leaderboard") { _, _ -> [LeaderboardEntry] in
            let ballot = try await emoji.call(.GET, "/emojis", as: [Emoji].self) ?? []
            let results = try await voting.call(.GET, "/results", as: [Tally].self) ?? []
            let characters = Dictionary(ballot.map { ($0.shortcode, $0.unicode) }) { first, _ in first }
            return results.map {
                LeaderboardEntry(shortcode: $0.shortcode, unicode: characters[$0.shortcode] ?? "?", votes: $0.votes)
            }
        }
        return router
    }

    static func escaped(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
    }

    /// Runs the marble. `EMOJIVOTO_LISTEN`: the public address; `EMOJIVOTO_EMOJI_ADDR` and
    /// `EMOJIVOTO_VOTING_ADDR`: the peers; `EMOJIVOTO_PUBLIC_CHAIN`: the chain the page is served
    /// with (the marble certificate and the Coordinator intermediate, so browsers and curl can
    /// verify it with the Coordinator root).
    public static func run(environment: [String: String]) async throws {
        let settings = DemoEnvironment(environment)
        let mesh = try MarbleTLS(environment: environment)
        let publicTLS = try MarbleTLS(
            certificateChainPEM: try settings.required("EMOJIVOTO_PUBLIC_CHAIN"),
            privateKeyPEM: try settings.required("MARBLE_PREDEFINED_PRIVATE_KEY"),
            trustRootsPEM: try settings.required("MARBLE_PREDEFINED_COORDINATOR_ROOT_CA"))
        let emojiAddress = try settings.address("EMOJIVOTO_EMOJI_ADDR")
        let votingAddress = try settings.address("EMOJIVOTO_VOTING_ADDR")
        let client = HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: HTTPClient.Configuration(tlsConfiguration: mesh.clientConfiguration()))
        let emoji = PeerClient(
            client: client, name: "emoji", baseURL: "https://\(emojiAddress.host):\(emojiAddress.port)")
        let voting = PeerClient(
            client: client, name: "voting", baseURL: "https://\(votingAddress.host):\(votingAddress.port)")
        do {
            try await serve(
                router(emoji: emoji, voting: voting), name: "web", address: try settings.address("EMOJIVOTO_LISTEN"),
                tls: publicTLS.serverConfiguration(requireClientCertificate: false), logger: Logger(label: "web"))
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }

    static let page = """
        <!doctype html>
        <html><head><meta charset="utf-8"><title>emojivoto on marblerun-swift</title>
        <style>body{font-family:sans-serif;max-width:40em;margin:2em auto}button{font-size:2em;margin:.2em}</style>
        </head><body>
        <h1>Vote for your favourite emoji</h1>
        <p>Served by the <code>web</code> marble; the ballot comes from the <code>emoji</code> marble and the
        tallies from the <code>voting</code> marble, over mutual TLS with Coordinator-issued certificates.</p>
        <div id="ballot"></div><h2>Leaderboard</h2><ol id="board"></ol>
        <script>
        async function board() {
          const rows = await (await fetch('/api/leaderboard')).json();
          document.getElementById('board').innerHTML =
            rows.map(r => `<li>${r.unicode} ${r.shortcode}: ${r.votes}</li>`).join('');
        }
        async function vote(code) { await fetch('/api/vote?choice=' + encodeURIComponent(code), {method: 'POST'}); board(); }
        (async () => {
          const emojis = await (await fetch('/api/list')).json();
          document.getElementById('ballot').innerHTML = emojis.map(e =>
            `<button title="${e.shortcode}" onclick="vote('${e.shortcode}')">${e.unicode}</button>`).join('');
          board();
        })();
        </script></body></html>
        """
}
