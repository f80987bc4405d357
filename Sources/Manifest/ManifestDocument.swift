import Crypto
import JSONText

/// A manifest as a user wrote it: the exact bytes, the JSON sent to a Coordinator, the model,
/// and every problem found while reading and validating it.
public struct ManifestDocument: Sendable {
    public enum Format: String, Sendable {
        case json
        case yaml
    }

    /// The input as given.
    public let bytes: [UInt8]
    public let format: Format
    /// The JSON a Coordinator receives: the input itself, or a YAML input converted as
    /// MarbleRun's CLI converts it. Empty when the input could not be read.
    public let jsonBytes: [UInt8]
    /// nil when the document could not be read at all.
    public let manifest: Manifest?
    /// Errors and warnings, reading problems first.
    public let problems: [ManifestProblem]

    public var errors: [ManifestProblem] { problems.filter { $0.severity == .error } }
    public var warnings: [ManifestProblem] { problems.filter { $0.severity == .warning } }
    /// True when there is no error (warnings allowed).
    public var isValid: Bool { manifest != nil && errors.isEmpty }

    /// The manifest fingerprint MarbleRun reports: SHA-256 (hex) of the JSON bytes.
    public var fingerprint: String { ManifestDocument.fingerprint(of: jsonBytes) }

    /// SHA-256 (lowercase hex) of exactly these bytes.
    public static func fingerprint(of bytes: [UInt8]) -> String {
        HexString.encode(SHA256.hash(data: bytes))
    }

    /// Reads, decodes and validates a manifest (JSON, or YAML when it does not start with `{`).
    public static func parse(_ bytes: [UInt8], options: ManifestOptions = ManifestOptions()) -> ManifestDocument {
        let format: Format =
            bytes.first(where: { ![0x20, 0x09, 0x0A, 0x0D, 0xEF, 0xBB, 0xBF].contains($0) }) == UInt8(ascii: "{")
            ? .json : .yaml
        func unreadable(_ code: ManifestProblem.Code, _ message: String) -> ManifestDocument {
            ManifestDocument(
                bytes: bytes, format: format, jsonBytes: [], manifest: nil,
                problems: [ManifestProblem(.error, code, at: "", message)])
        }
        if bytes.count > options.maximumSize {
            return unreadable(
                .tooLarge, "the manifest is \(bytes.count) bytes; the limit is \(options.maximumSize) bytes")
        }
        let value: JSONValue
        let jsonBytes: [UInt8]
        switch format {
        case .json:
            do {
                value = try JSONParser(maximumDepth: options.maximumDepth).parse(bytes)
            } catch {
                return unreadable(.syntax, "not valid JSON: \(error)")
            }
            jsonBytes = bytes
        case .yaml:
            guard let text = String(validating: bytes, as: UTF8.self) else {
                return unreadable(.syntax, "not valid JSON or YAML: the file is not UTF-8 text")
            }
            do {
                value = try YAMLConverter(maximumDepth: options.maximumDepth).convert(text)
            } catch {
                return unreadable(.syntax, "not valid YAML (nor JSON): \(error.reason)")
            }
            jsonBytes = value.serialized()
        }
        guard case .object = value else {
            return unreadable(.wrongType, "a manifest is a JSON object, got \(value.kindDescription)")
        }
        var decoder = ManifestDecoder(strict: options.strict)
        let manifest = decoder.decode(value)
        let readingProblems = decoder.problems.problems
        // A value that could not be read is reported once, not again as missing or invalid.
        let unreadablePaths = Set(readingProblems.filter { $0.severity == .error }.map(\.path))
        let validation = ManifestValidator().validate(manifest, undecodable: decoder.undecodable)
            .filter { !unreadablePaths.contains($0.path) }
        let problems = readingProblems + validation
        return ManifestDocument(
            bytes: bytes, format: format, jsonBytes: jsonBytes, manifest: manifest, problems: problems)
    }
}

/// How strictly a manifest is read.
public struct ManifestOptions: Sendable {
    /// Unknown fields are errors, not warnings.
    public var strict: Bool
    /// Larger inputs are refused before parsing.
    public var maximumSize: Int
    /// Deeper nesting is refused (a real manifest nests about 8 levels).
    public var maximumDepth: Int

    public init(strict: Bool = false, maximumSize: Int = 8 << 20, maximumDepth: Int = 64) {
        self.strict = strict
        self.maximumSize = maximumSize
        self.maximumDepth = maximumDepth
    }
}
