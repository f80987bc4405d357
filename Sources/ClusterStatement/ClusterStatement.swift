import Attestation
import Crypto
import Foundation
import JSONText
import X509

/// Everything a relying party needs to check a whole cluster offline, later, without trusting
/// whoever hands it over (docs/cluster-statement.md): the Coordinator's quote, the collateral it
/// was verified with, the Coordinator's certificates, the manifest with the root's signature and
/// the signed update log. The quote's nonce is derived from `time` and `salt`, so the time is
/// bound to the quote too.
public struct ClusterStatement: Sendable, Equatable {
    /// The value of the `format` member.
    public static let format = "marblerun-swift cluster statement"
    public static let version = 1

    /// RFC 3339 UTC, as written (the nonce covers these exact characters).
    public var time: String
    public var salt: [UInt8]
    /// The raw SGX quote the Coordinator gave for ``nonce``.
    public var quote: [UInt8]
    /// The PEM chain the Coordinator sent with its quote (intermediate, then root).
    public var certificateChain: String
    /// The collateral the quote was verified with, in dcap-qvl's JSON form.
    public var collateral: JSONValue
    /// The manifest's JSON bytes as the Coordinator holds them.
    public var manifest: [UInt8]
    /// The root key's ECDSA signature (DER) over SHA-256 of ``manifest``.
    public var manifestSignature: [UInt8]
    /// The update log's lines, each signed by the root key.
    public var updateLog: [String]

    public init(
        time: String, salt: [UInt8], quote: [UInt8], certificateChain: String, collateral: JSONValue,
        manifest: [UInt8], manifestSignature: [UInt8], updateLog: [String]
    ) {
        self.time = time
        self.salt = salt
        self.quote = quote
        self.certificateChain = certificateChain
        self.collateral = collateral
        self.manifest = manifest
        self.manifestSignature = manifestSignature
        self.updateLog = updateLog
    }

    /// The nonce the quote must bind: SHA-256("marblerun-swift cluster statement v1" ‖ 0 ‖
    /// salt ‖ UTF-8 of time).
    public static func nonce(time: String, salt: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: Array("\(format) v\(version)".utf8) + [0])
        hasher.update(data: salt)
        hasher.update(data: Array(time.utf8))
        return Array(hasher.finalize())
    }

    /// The time now, as a statement writes it (RFC 3339 UTC, whole seconds).
    public static func timestamp(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(timeZone: .gmt))
    }

    /// The statement as a JSON document (members in the order the format page lists them).
    public func serialized() -> [UInt8] {
        let object = JSONValue.object([
            JSONMember("format", .string(Self.format)),
            JSONMember("version", .number(String(Self.version))),
            JSONMember("time", .string(time)),
            JSONMember("salt", .string(Data(salt).base64EncodedString())),
            JSONMember("quote", .string(Data(quote).base64EncodedString())),
            JSONMember("certificateChain", .string(certificateChain)),
            JSONMember("collateral", collateral),
            JSONMember("manifest", .string(Data(manifest).base64EncodedString())),
            JSONMember("manifestSignature", .string(Data(manifestSignature).base64EncodedString())),
            JSONMember("updateLog", .array(updateLog.map(JSONValue.string))),
        ])
        return object.serialized() + [UInt8(ascii: "\n")]
    }

    /// Reads a statement; the error names the member that is missing or malformed.
    public init(parsing bytes: [UInt8]) throws(StatementError) {
        let value: JSONValue
        do {
            value = try JSONParser(maximumDepth: 16).parse(bytes)
        } catch {
            throw StatementError(.statement, "not JSON: \(error)")
        }
        guard case .object(let members) = value else { throw StatementError(.statement, "not a JSON object") }
        var seen: Set<String> = []
        for member in members where !seen.insert(member.key).inserted {
            throw StatementError(.statement, "the member \"\(member.key.prefix(40))\" appears twice")
        }
        guard value["format"]?.stringValue == Self.format else {
            throw StatementError(.statement, "not a cluster statement (\"format\" is not \"\(Self.format)\")")
        }
        guard value["version"]?.intValue == Self.version else {
            throw StatementError(
                .statement,
                "version \(value["version"].map { String(decoding: $0.serialized(), as: UTF8.self) } ?? "missing") is not supported; this verifier reads version \(Self.version)"
            )
        }
        func string(_ part: StatementError.Part) throws(StatementError) -> String {
            guard let text = value[part.rawValue]?.stringValue else {
                throw StatementError(part, "missing or not a string")
            }
            return text
        }
        func base64(_ part: StatementError.Part) throws(StatementError) -> [UInt8] {
            guard let data = Data(base64Encoded: try string(part)) else { throw StatementError(part, "not base64") }
            return Array(data)
        }
        time = try string(.time)
        salt = try base64(.salt)
        quote = try base64(.quote)
        certificateChain = try string(.certificateChain)
        guard let collateral = value["collateral"], case .object = collateral else {
            throw StatementError(.collateral, "missing or not an object")
        }
        self.collateral = collateral
        manifest = try base64(.manifest)
        manifestSignature = try base64(.manifestSignature)
        guard let lines = value["updateLog"]?.arrayValue else {
            throw StatementError(.updateLog, "missing or not an array")
        }
        var log: [String] = []
        for line in lines {
            guard let text = line.stringValue else { throw StatementError(.updateLog, "a line is not a string") }
            log.append(text)
        }
        updateLog = log
    }
}

/// Why a statement does not verify, naming the part that failed.
public struct StatementError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Part: String, Sendable {
        case statement, time, salt, quote, certificateChain, collateral, manifest, manifestSignature, updateLog
    }

    public var part: Part
    public var message: String

    public init(_ part: Part, _ message: String) {
        self.part = part
        self.message = message
    }

    public var description: String { "\(part.rawValue): \(message)" }
}
