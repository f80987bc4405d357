import Foundation
import Synchronization

/// Linux's configfs-tsm report interface, as a TDX guest kernel offers it
/// (`/sys/kernel/config/tsm/report/NAME/{inblob,outblob,provider,generation}`; injectable for
/// tests): the report data goes to `inblob`, the quote comes from `outblob`. `generation` counts
/// the writes to the entry; it must have grown by exactly one over the exchange, or another
/// writer's request got in between and the quote may bind its data.
public struct TSMQuoteIssuer: QuoteIssuer {
    public static let defaultDirectory = URL(fileURLWithPath: "/sys/kernel/config/tsm")
    /// The report entry used (created if absent).
    public static let entryName = "marblerun"

    public let directory: URL

    public init(directory: URL = TSMQuoteIssuer.defaultDirectory) { self.directory = directory }

    /// True when the configfs-tsm report interface exists here.
    public static func isAvailable(at directory: URL = defaultDirectory) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(
            atPath: directory.appendingPathComponent("report").path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// One exchange at a time in this process: the entry is shared.
    private static let exclusive = Mutex(())

    public func issueQuote(reportData: [UInt8]) throws(AttestationError) -> [UInt8] {
        let padded = try ReportData.padded(reportData)
        return try Self.exclusive.withLock { _ throws(AttestationError) in try exchange(padded) }
    }

    private func exchange(_ padded: [UInt8]) throws(AttestationError) -> [UInt8] {
        let entry = directory.appendingPathComponent("report").appendingPathComponent(Self.entryName)
        if !FileManager.default.fileExists(atPath: entry.path) {
            // In configfs, creating the directory makes the kernel add the entry's attribute files.
            guard mkdir(entry.path, 0o700) == 0 || errno == EEXIST else {
                throw AttestationError(
                    .unsupportedQuote,
                    "cannot create the configfs-tsm report entry \(entry.path) (errno \(errno)); is this a TDX guest with configfs mounted?"
                )
            }
        }
        let provider = try text(entry, "provider")
        guard provider == "tdx_guest" else {
            throw AttestationError(
                .unsupportedQuote,
                "the configfs-tsm provider is \"\(provider.prefix(40))\", not tdx_guest: not a TDX guest")
        }
        let before = try generation(entry)
        do {
            let handle = try FileHandle(forWritingTo: entry.appendingPathComponent("inblob"))
            try handle.write(contentsOf: Data(padded))
            try handle.close()
        } catch {
            throw AttestationError(
                .unsupportedQuote, "cannot write \(entry.path)/inblob: \(error.localizedDescription)")
        }
        let quote: Data
        do {
            let handle = try FileHandle(forReadingFrom: entry.appendingPathComponent("outblob"))
            defer { try? handle.close() }
            quote = try handle.readToEnd() ?? Data()
        } catch {
            throw AttestationError(
                .unsupportedQuote, "cannot read \(entry.path)/outblob: \(error.localizedDescription)")
        }
        let after = try generation(entry)
        guard after == before + 1 else {
            throw AttestationError(
                .unsupportedQuote,
                "another writer used the configfs-tsm entry \(entry.path) during this request (generation \(before) → \(after)); retry"
            )
        }
        guard !quote.isEmpty else {
            throw AttestationError(
                .unsupportedQuote, "\(entry.path)/outblob is empty: the TDX module produced no quote")
        }
        return Array(quote)
    }

    private func text(_ entry: URL, _ name: String) throws(AttestationError) -> String {
        guard let data = FileManager.default.contents(atPath: entry.appendingPathComponent(name).path) else {
            throw AttestationError(.unsupportedQuote, "cannot read \(entry.path)/\(name); is this a TDX guest?")
        }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func generation(_ entry: URL) throws(AttestationError) -> UInt64 {
        let value = try text(entry, "generation")
        guard let number = UInt64(value) else {
            throw AttestationError(.unsupportedQuote, "\(entry.path)/generation is not a number: \(value.prefix(20))")
        }
        return number
    }
}
