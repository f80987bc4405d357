import Foundation

/// One thing wrong with (error) or worth a second look in (warning) a manifest.
///
/// Tests and tools compare ``code`` and ``path``; ``message`` is for people and may change.
public struct ManifestProblem: Sendable, Hashable, CustomStringConvertible {
    public enum Severity: String, Sendable, Hashable, Codable {
        case error
        case warning
    }

    /// The kind of problem, stable across releases.
    public struct Code: RawRepresentable, Sendable, Hashable, Codable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
    }

    public var severity: Severity
    public var code: Code
    /// Where in the manifest, as a JSON path: `Marbles.backend.Parameters.Env.KEY`.
    public var path: String
    /// One sentence a user can act on.
    public var message: String

    public init(_ severity: Severity, _ code: Code, at path: String, _ message: String) {
        self.severity = severity
        self.code = code
        self.path = path
        self.message = message
    }

    public var description: String {
        path.isEmpty ? "\(severity.rawValue): \(message)" : "\(severity.rawValue): \(path): \(message)"
    }
}

extension ManifestProblem.Code {
    // Reading the document
    public static let tooLarge = Self(rawValue: "too-large")
    public static let syntax = Self(rawValue: "syntax")
    public static let wrongType = Self(rawValue: "wrong-type")
    public static let unknownField = Self(rawValue: "unknown-field")
    public static let caseMismatch = Self(rawValue: "case-mismatch")
    public static let duplicateKey = Self(rawValue: "duplicate-key")
    public static let invalidValue = Self(rawValue: "invalid-value")
    public static let ignoredField = Self(rawValue: "ignored-field")
    // Structure
    public static let missingSection = Self(rawValue: "missing-section")
    public static let missingField = Self(rawValue: "missing-field")
    public static let conflictingFields = Self(rawValue: "conflicting-fields")
    public static let unknownReference = Self(rawValue: "unknown-reference")
    public static let notHex = Self(rawValue: "not-hex")
    public static let outOfRange = Self(rawValue: "out-of-range")
    public static let invalidSize = Self(rawValue: "invalid-size")
    public static let invalidCertificate = Self(rawValue: "invalid-certificate")
    public static let invalidKey = Self(rawValue: "invalid-key")
    public static let weakKey = Self(rawValue: "weak-key")
    public static let duplicateCertificate = Self(rawValue: "duplicate-certificate")
    public static let permission = Self(rawValue: "permission")
    public static let threshold = Self(rawValue: "threshold")
    public static let debugPackage = Self(rawValue: "debug-package")
    // Templates
    public static let template = Self(rawValue: "template")
    public static let nulByte = Self(rawValue: "nul-byte")
}

/// A JSON path being built while walking a manifest: `Marbles.web.Parameters.Files["/etc/a.conf"]`.
struct JSONPath: Hashable, Sendable, CustomStringConvertible {
    private(set) var description: String

    static let root = JSONPath(description: "")

    func appending(_ key: String) -> JSONPath {
        let plain =
            !key.isEmpty
            && key.unicodeScalars.allSatisfy {
                ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "_"
                    || $0 == "-"
            }
        if plain {
            return JSONPath(description: description.isEmpty ? key : "\(description).\(key)")
        }
        var escaped = key
        if key.contains("\\") || key.contains("\"") {
            escaped = key.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        }
        return JSONPath(description: "\(description)[\"\(escaped)\"]")
    }

    func appending(index: Int) -> JSONPath {
        JSONPath(description: "\(description)[\(index)]")
    }
}

/// Collects problems while a manifest is read and checked.
struct ProblemList {
    var problems: [ManifestProblem] = []

    mutating func error(_ code: ManifestProblem.Code, _ path: JSONPath, _ message: String) {
        problems.append(ManifestProblem(.error, code, at: path.description, message))
    }

    mutating func warning(_ code: ManifestProblem.Code, _ path: JSONPath, _ message: String) {
        problems.append(ManifestProblem(.warning, code, at: path.description, message))
    }
}
