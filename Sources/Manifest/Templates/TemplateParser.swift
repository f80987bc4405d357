import JSONText

/// Splits template text into literal text and actions.
struct TemplateParser {
    let text: [UInt8]

    private static let goKeywords: Set<String> = [
        "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue", "nil", "true",
        "false", "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "html", "js", "urlquery",
        "call", "eq", "ne", "lt", "le", "gt", "ge",
    ]

    func parse() throws(TemplateError) -> [Template.Segment] {
        var segments: [Template.Segment] = []
        var pending: [UInt8] = []
        var index = 0
        while index < text.count {
            guard let open = find([UInt8(ascii: "{"), UInt8(ascii: "{")], from: index) else {
                pending += text[index...]
                break
            }
            pending += text[index..<open]
            var contentStart = open + 2
            // "{{- " trims the whitespace before the action, as in Go.
            if contentStart + 1 < text.count, text[contentStart] == UInt8(ascii: "-"), isSpace(text[contentStart + 1]) {
                while let last = pending.last, isSpace(last) { pending.removeLast() }
                contentStart += 2
            }
            guard let close = find([UInt8(ascii: "}"), UInt8(ascii: "}")], from: contentStart) else {
                throw error(at: open, "unclosed action: '{{' without a matching '}}'")
            }
            var contentEnd = close
            var trimAfter = false
            if contentEnd - 2 >= contentStart, text[contentEnd - 1] == UInt8(ascii: "-"), isSpace(text[contentEnd - 2])
            {
                trimAfter = true
                contentEnd -= 2
            }
            let content = Array(text[contentStart..<contentEnd])
            if let action = try parseAction(content, openAt: open, contentStart: contentStart) {
                if !pending.isEmpty { segments.append(.text(pending)) }
                pending = []
                segments.append(.action(action))
            }
            index = close + 2
            if trimAfter {
                while index < text.count, isSpace(text[index]) { index += 1 }
            }
        }
        if !pending.isEmpty { segments.append(.text(pending)) }
        return segments
    }

    /// nil for a comment.
    private func parseAction(_ content: [UInt8], openAt open: Int, contentStart: Int) throws(TemplateError) -> Template
        .Action?
    {
        let trimmed = content.drop(while: isSpace)
        if trimmed.starts(with: [UInt8(ascii: "/"), UInt8(ascii: "*")]) {
            let body = Array(trimmed.reversed().drop(while: isSpace).reversed())
            guard body.count >= 4, body.suffix(2) == [UInt8(ascii: "*"), UInt8(ascii: "/")] else {
                throw error(at: open, "unclosed comment: a comment must end with '*/}}'")
            }
            return nil
        }
        let tokens = try tokenize(content, offset: contentStart)
        let place = TextPosition(of: open, in: text)
        guard !tokens.isEmpty else { throw error(at: open, "empty action: write {{ FUNCTION .Secrets.NAME }}") }
        let words = tokens.map(\.text)
        let function: Token
        let argument: Token
        switch words.count {
        case 1 where words[0].hasPrefix("."):
            throw error(
                at: tokens[0].offset,
                "\(words[0]) must be passed to a function, as in {{ pem \(words[0]) }} or {{ raw \(words[0]) }}")
        case 2 where !words[0].hasPrefix(".") && words[1].hasPrefix("."):
            function = tokens[0]
            argument = tokens[1]
        case 3 where words[0].hasPrefix(".") && words[1] == "|" && !words[2].hasPrefix("."):
            function = tokens[2]
            argument = tokens[0]
        default:
            if let pipe = tokens.firstIndex(where: { $0.text == "|" }),
                words.filter({ $0 == "|" }).count > 1 || pipe != 1
            {
                throw error(
                    at: tokens[pipe].offset,
                    "only one function per action is supported, as in {{ .Secrets.NAME | hex }}")
            }
            if let word = tokens.first(where: { !$0.text.hasPrefix(".") && $0.text != "|" }), tokens.count > 2 {
                throw error(at: word.offset, "\(word.text) takes exactly one argument: a secret such as .Secrets.NAME")
            }
            throw error(at: tokens[0].offset, "expected {{ FUNCTION .Secrets.NAME }} or {{ .Secrets.NAME | FUNCTION }}")
        }
        if Self.goKeywords.contains(function.text) {
            throw error(
                at: function.offset,
                "'\(function.text)' is not supported in manifest templates: only pem, hex, raw, base64 (Files) and pem, hex, string, base64 (Env)"
            )
        }
        let reference = try parseReference(argument)
        return Template.Action(function: function.text, reference: reference, line: place.line, column: place.column)
    }

    private struct Token {
        var text: String
        var offset: Int
    }

    private func tokenize(_ content: [UInt8], offset: Int) throws(TemplateError) -> [Token] {
        var tokens: [Token] = []
        var index = 0
        while index < content.count {
            let byte = content[index]
            if isSpace(byte) {
                index += 1
                continue
            }
            let start = index
            switch byte {
            case UInt8(ascii: "|"):
                tokens.append(Token(text: "|", offset: offset + index))
                index += 1
            case UInt8(ascii: "."), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "_"):
                while index < content.count, isWordByte(content[index]) { index += 1 }
                if index < content.count, !isSpace(content[index]), content[index] != UInt8(ascii: "|") {
                    throw unsupported(content[index], at: offset + index)
                }
                tokens.append(
                    Token(text: String(decoding: content[start..<index], as: UTF8.self), offset: offset + start))
            default:
                throw unsupported(byte, at: offset + index)
            }
        }
        return tokens
    }

    private func unsupported(_ byte: UInt8, at offset: Int) -> TemplateError {
        switch byte {
        case UInt8(ascii: "$"): return error(at: offset, "variables ($…) are not supported in manifest templates")
        case UInt8(ascii: "\""), UInt8(ascii: "`"), UInt8(ascii: "'"):
            return error(at: offset, "literals are not supported in manifest templates")
        case UInt8(ascii: "("), UInt8(ascii: ")"):
            return error(at: offset, "parentheses are not supported in manifest templates")
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "+"):
            return error(
                at: offset,
                "numbers are not supported in manifest templates (a secret name used in a template must consist of letters, digits and '_')"
            )
        case UInt8(ascii: ":"), UInt8(ascii: "="):
            return error(at: offset, "assignments are not supported in manifest templates")
        default:
            if byte >= 0x21 && byte < 0x7F {
                return error(at: offset, "unexpected '\(Character(Unicode.Scalar(byte)))' in an action")
            }
            return error(at: offset, "unexpected byte 0x\(String(byte, radix: 16)) in an action")
        }
    }

    private func parseReference(_ token: Token) throws(TemplateError) -> TemplateReference {
        let parts = token.text.split(separator: ".", omittingEmptySubsequences: false).dropFirst().map(String.init)
        if parts.contains(where: \.isEmpty) { throw error(at: token.offset, "malformed field chain \(token.text)") }
        var scope: TemplateReference.Scope
        var rest: ArraySlice<String>
        switch parts.first {
        case "Secrets":
            scope = .secrets
            rest = parts.dropFirst()
        case "Previous":
            guard parts.count > 1, parts[1] == "Secrets" else {
                throw error(at: token.offset, "\(token.text): .Previous has only .Secrets")
            }
            scope = .previousSecrets
            rest = parts.dropFirst(2)
        case "MarbleRun":
            scope = .marbleRun
            rest = parts.dropFirst()
        case "Marblerun":
            throw error(
                at: token.offset,
                "\(token.text): the name is .MarbleRun (capital R); .Marblerun was removed in MarbleRun 0.3")
        default:
            throw error(
                at: token.offset, "\(token.text): a template can use .Secrets, .Previous.Secrets and .MarbleRun")
        }
        guard let name = rest.first else {
            throw error(at: token.offset, "\(token.text) names no secret: write \(token.text).NAME")
        }
        if scope == .marbleRun, !TemplateReference.marbleRunNames.contains(name) {
            throw error(
                at: token.offset,
                "\(token.text): .MarbleRun has \(TemplateReference.marbleRunNames.joined(separator: ", "))")
        }
        var field: TemplateReference.Field?
        if rest.count > 1 {
            guard let known = TemplateReference.Field(rawValue: rest[rest.startIndex + 1]) else {
                throw error(at: token.offset, "\(token.text): a secret has the fields Cert, Private and Public")
            }
            field = known
        }
        if rest.count > 2 { throw error(at: token.offset, "\(token.text): nothing can follow .\(field!.rawValue)") }
        return TemplateReference(scope: scope, name: name, field: field)
    }

    private func find(_ needle: [UInt8], from start: Int) -> Int? {
        guard start + needle.count <= text.count else { return nil }
        var index = start
        while index + needle.count <= text.count {
            if text[index] == needle[0], text[index + 1] == needle[1] { return index }
            index += 1
        }
        return nil
    }

    private func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }

    private func isWordByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "_"), UInt8(ascii: "."):
            return true
        default:
            return false
        }
    }

    private func error(at offset: Int, _ reason: String) -> TemplateError {
        let place = TextPosition(of: offset, in: text)
        return TemplateError(line: place.line, column: place.column, reason: reason)
    }
}
