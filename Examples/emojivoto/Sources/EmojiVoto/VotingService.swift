import Hummingbird
import Logging
import MarbleKit

/// The tallies, one count per shortcode.
public actor Ballot {
    private var votes: [String: Int] = [:]

    public init() {}

    /// Counts one vote; returns the new count.
    public func vote(for shortcode: String) -> Int {
        votes[shortcode, default: 0] += 1
        return votes[shortcode, default: 0]
    }

    /// Most votes first, ties by shortcode.
    public func results() -> [Tally] {
        votes.map { Tally(shortcode: $0.key, votes: $0.value) }.sorted {
            ($0.votes, $1.shortcode) > ($1.votes, $0.shortcode)
        }
    }
}

/// The `voting` marble: counts votes that cluster peers (the web marble) send over mutual TLS.
public enum VotingService {
    public static func router(ballot: Ballot) -> Router<BasicRequestContext> {
        let router = Router()
        router.post("/vote") { request, _ -> Tally in
            guard let shortcode = request.uri.queryParameters.get("shortcode"), !shortcode.isEmpty,
                shortcode.count <= 64
            else { throw HTTPError(.badRequest, message: "give ?shortcode=:name:") }
            return Tally(shortcode: shortcode, votes: await ballot.vote(for: shortcode))
        }
        router.get("/results") { _, _ in await ballot.results() }
        return router
    }

    public static func run(environment: [String: String]) async throws {
        let settings = DemoEnvironment(environment)
        let tls = try MarbleTLS(environment: environment)
        try await serve(
            router(ballot: Ballot()), name: "voting", address: try settings.address("EMOJIVOTO_LISTEN"),
            tls: tls.serverConfiguration(), logger: Logger(label: "voting"))
    }
}
