import Foundation
import JSONText
import Logging
import Synchronization

/// `EDG_LOG_FORMAT=json`: one JSON object per line on standard error, with the same keys on
/// every line — `time` (RFC 3339, UTC, milliseconds), `level`, `logger`, `message`, and
/// `metadata` (an object of strings) — in sorted order, so a log pipeline can index them.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    /// One lock for every handler: lines from different loggers never interleave.
    private static let output = Mutex(FileHandle.standardError)

    init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let own = event.metadata { merged.merge(own) { _, new in new } }
        let line = Self.line(
            time: Date(), level: event.level, label: label, message: event.message.description, metadata: merged)
        Self.output.withLock { $0.write(Data(line)) }
    }

    static func line(
        time: Date, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata
    ) -> [UInt8] {
        let object = JSONValue.object([
            JSONMember("level", .string(level.rawValue)),
            JSONMember("logger", .string(label)),
            JSONMember("message", .string(message)),
            JSONMember("metadata", .object(metadata.map { JSONMember($0.key, .string($0.value.description)) })),
            JSONMember("time", .string(time.formatted(Self.timeFormat))),
        ])
        return object.serialized() + [UInt8(ascii: "\n")]
    }

    private static let timeFormat = Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt)
}
