import Foundation
import Manifest

/// The output of `marblerun manifest check`, for people and for scripts.
enum ManifestCheckReport {
    static func text(file: String, document: ManifestDocument) -> String {
        var out = ""
        for problem in document.errors + document.warnings {
            out += "\(problem)\n"
        }
        let errors = document.errors.count
        let warnings = document.warnings.count
        let warningText = warnings == 1 ? "1 warning" : "\(warnings) warnings"
        if let manifest = document.manifest, errors == 0 {
            let counts = [
                count(manifest.packages.count, "package"), count(manifest.marbles.count, "marble"),
                count(manifest.secrets.count, "secret"), count(manifest.users.count, "user"),
            ].joined(separator: ", ")
            out += "\(file): valid (\(counts); \(warningText)); fingerprint \(document.fingerprint)\n"
        } else {
            out += "\(file): invalid: \(errors == 1 ? "1 error" : "\(errors) errors"), \(warningText)\n"
        }
        return out
    }

    private static func count(_ number: Int, _ noun: String) -> String {
        number == 1 ? "1 \(noun)" : "\(number) \(noun)s"
    }

    struct Entry: Encodable {
        var path: String
        var code: String
        var message: String
    }

    struct Result: Encodable {
        var file: String
        var valid: Bool
        var format: String?
        var fingerprint: String?
        var errors: [Entry]
        var warnings: [Entry]
    }

    static func json(file: String, document: ManifestDocument) -> String {
        let entries = { (problems: [ManifestProblem]) in
            problems.map { Entry(path: $0.path, code: $0.code.rawValue, message: $0.message) }
        }
        return encode(
            Result(
                file: file, valid: document.isValid, format: document.format.rawValue,
                fingerprint: document.jsonBytes.isEmpty ? nil : document.fingerprint,
                errors: entries(document.errors), warnings: entries(document.warnings)))
    }

    static func json(file: String, readError: String) -> String {
        encode(
            Result(
                file: file, valid: false, format: nil, fingerprint: nil,
                errors: [Entry(path: "", code: "unreadable", message: readError)], warnings: []))
    }

    private static func encode(_ result: Result) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(result)) ?? Data(), as: UTF8.self)
    }
}
