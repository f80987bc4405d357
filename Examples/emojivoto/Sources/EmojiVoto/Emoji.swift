/// One emoji that can be voted for: its shortcode (`:doughnut:`) and the character.
public struct Emoji: Codable, Sendable, Hashable {
    public var shortcode: String
    public var unicode: String

    public init(shortcode: String, unicode: String) {
        self.shortcode = shortcode
        self.unicode = unicode
    }

    /// The ballot the `emoji` marble serves.
    public static let all: [Emoji] = [
        ("doughnut", "🍩"), ("joy", "😂"), ("sunglasses", "😎"), ("rocket", "🚀"), ("tada", "🎉"),
        ("pizza", "🍕"), ("unicorn", "🦄"), ("fire", "🔥"), ("rainbow", "🌈"), ("cat", "🐱"),
        ("dog", "🐶"), ("avocado", "🥑"), ("ghost", "👻"), ("robot", "🤖"), ("star", "⭐"),
        ("lock", "🔒"), ("key", "🔑"), ("crab", "🦀"), ("bird", "🐦"), ("marble", "🔮"),
    ].map { Emoji(shortcode: ":\($0.0):", unicode: $0.1) }
}

/// One line of the leaderboard the `voting` marble keeps.
public struct Tally: Codable, Sendable, Hashable {
    public var shortcode: String
    public var votes: Int

    public init(shortcode: String, votes: Int) {
        self.shortcode = shortcode
        self.votes = votes
    }
}

/// A leaderboard line as the web front end shows it.
public struct LeaderboardEntry: Codable, Sendable, Hashable {
    public var shortcode: String
    public var unicode: String
    public var votes: Int
}
