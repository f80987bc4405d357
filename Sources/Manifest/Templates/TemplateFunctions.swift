import Foundation

/// MarbleRun's template functions (`pem`, `hex`, `raw`, `base64`, `string`) with its rules:
/// which kinds of value each accepts, and that an empty value is an error, not empty output.
enum TemplateFunctions {
    private enum Argument {
        case secret(TemplateValues.Secret)
        case certificate([UInt8])
        case privateKey([UInt8])
        case publicKey([UInt8])

        var bytes: [UInt8] {
            switch self {
            case .secret(let secret): return secret.publicKey
            case .certificate(let bytes), .privateKey(let bytes), .publicKey(let bytes): return bytes
            }
        }
    }

    static func apply(_ action: Template.Action, values: TemplateValues, kind: Template.Kind) throws(TemplateError)
        -> [UInt8]
    {
        func fail(_ reason: String) -> TemplateError {
            TemplateError(line: action.line, column: action.column, reason: reason)
        }
        let reference = action.reference
        let table: [String: TemplateValues.Secret]
        switch reference.scope {
        case .secrets: table = values.secrets
        case .previousSecrets: table = values.previousSecrets
        case .marbleRun: table = values.marbleRun
        }
        guard let secret = table[reference.name] else {
            throw fail("\(reference) does not exist")
        }
        let argument: Argument
        switch reference.field {
        case nil: argument = .secret(secret)
        case .cert: argument = .certificate(secret.cert)
        case .privateKey: argument = .privateKey(secret.privateKey)
        case .publicKey: argument = .publicKey(secret.publicKey)
        }
        func nonEmpty(_ bytes: [UInt8]) throws(TemplateError) -> [UInt8] {
            if bytes.isEmpty {
                let part = reference.field.map { ".\($0.rawValue)" } ?? " (its public part)"
                throw fail(
                    "\(reference) is empty: a \(secret.type.isEmpty ? "secret" : secret.type) secret has no \(part)")
            }
            return bytes
        }

        switch action.function {
        case "pem":
            let label: String
            switch argument {
            case .certificate: label = "CERTIFICATE"
            case .privateKey: label = "PRIVATE KEY"
            case .publicKey: label = "PUBLIC KEY"
            case .secret:
                throw fail("pem needs .Cert, .Private or .Public: write {{ pem \(reference).Cert }}")
            }
            return PEM.encode(try nonEmpty(argument.bytes), label: label)
        case "raw" where kind == .file:
            return try nonEmpty(argument.bytes)
        case "hex":
            return Array(HexString.encode(try nonEmpty(argument.bytes)).utf8)
        case "base64":
            return Array(Data(try nonEmpty(argument.bytes)).base64EncodedString().utf8)
        // MarbleRun's own sample manifest uses `raw` in Env; it gets `string`'s rules there.
        case "string" where kind == .env, "raw" where kind == .env:
            guard case .secret(let plain) = argument, plain.type == "plain" else {
                throw fail(
                    "\(action.function) in Env takes a plain secret as a whole (\(reference.scope == .marbleRun ? ".Secrets.NAME" : "\(reference)")); use hex or base64 for keys and pem for certificates"
                )
            }
            let bytes = try nonEmpty(plain.publicKey)
            if bytes.contains(0) {
                throw fail("\(reference) contains a NUL byte, which an environment variable cannot hold")
            }
            return bytes
        default:
            let allowed = kind.functionNames.joined(separator: ", ")
            let place = kind == .file ? "Files" : "Env"
            var reason = "unknown function '\(action.function)': \(place) templates can use \(allowed)"
            if kind == .file, action.function == "string" { reason += " ('string' is for Env; use raw in Files)" }
            if let suggestion = ClosestMatch.find(action.function, in: kind.functionNames),
                suggestion != action.function
            {
                reason += ". Did you mean '\(suggestion)'?"
            }
            throw fail(reason)
        }
    }
}

/// PEM text as Go's `pem.EncodeToMemory` writes it: 64-column base64, trailing newline.
enum PEM {
    static func encode(_ der: [UInt8], label: String) -> [UInt8] {
        let body = Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
        return Array("-----BEGIN \(label)-----\n\(body)\n-----END \(label)-----\n".utf8)
    }
}
