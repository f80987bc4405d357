import Foundation

/// A parsed manifest template: the subset of Go's `text/template` that MarbleRun manifests use
/// (compat §3) — `{{ FUNC ARG }}` or `{{ ARG | FUNC }}` with a secret reference as `ARG`,
/// trim markers and comments.
///
/// Anything else Go would accept (`if`, `range`, variables, literals…) is refused with its
/// position and the reason, because a manifest template only ever needs to place secrets.
public struct Template: Sendable, Hashable {
    /// Which function set applies: Files get `raw`, Env gets `string` (and no NUL bytes).
    public enum Kind: Sendable, Hashable {
        case file
        case env

        public var functionNames: [String] {
            switch self {
            case .file: return ["pem", "hex", "raw", "base64"]
            case .env: return ["pem", "hex", "string", "base64"]
            }
        }
    }

    /// One `{{ … }}` that renders a value.
    public struct Action: Sendable, Hashable {
        public var function: String
        public var reference: TemplateReference
        /// 1-based line and column of the `{{`.
        public var line: Int
        public var column: Int
    }

    enum Segment: Sendable, Hashable {
        case text([UInt8])
        case action(Action)
    }

    let segments: [Segment]

    /// The actions in order of appearance.
    public var actions: [Action] {
        segments.compactMap { if case .action(let action) = $0 { return action } else { return nil } }
    }

    /// Parses template text. Text without `{{` is a template with no actions.
    public init(parsing text: [UInt8]) throws(TemplateError) {
        segments = try TemplateParser(text: text).parse()
    }

    /// Renders the template with the given values.
    public func render(_ values: TemplateValues, as kind: Kind) throws(TemplateError) -> [UInt8] {
        var output: [UInt8] = []
        for segment in segments {
            switch segment {
            case .text(let bytes):
                output += bytes
            case .action(let action):
                output += try TemplateFunctions.apply(action, values: values, kind: kind)
            }
        }
        return output
    }
}

/// A template failed to parse or render, at a 1-based line and column of its text.
public struct TemplateError: Error, Sendable, Hashable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public var reason: String

    public var description: String { "line \(line), column \(column): \(reason)" }
}

/// What an action's argument names: `.Secrets.NAME.Cert`, `.MarbleRun.RootCA`, …
public struct TemplateReference: Sendable, Hashable, CustomStringConvertible {
    public enum Scope: Sendable, Hashable {
        case secrets
        case previousSecrets
        case marbleRun
    }

    public enum Field: String, Sendable, Hashable, CaseIterable {
        case cert = "Cert"
        case privateKey = "Private"
        case publicKey = "Public"
    }

    public var scope: Scope
    public var name: String
    /// nil for a bare secret, which renders as its public part.
    public var field: Field?

    public static let marbleRunNames = ["RootCA", "MarbleCert", "CoordinatorRoot", "CoordinatorIntermediate"]

    public var description: String {
        let prefix: String
        switch scope {
        case .secrets: prefix = ".Secrets"
        case .previousSecrets: prefix = ".Previous.Secrets"
        case .marbleRun: prefix = ".MarbleRun"
        }
        return "\(prefix).\(name)" + (field.map { ".\($0.rawValue)" } ?? "")
    }
}
