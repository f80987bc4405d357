import Foundation
import Manifest
import Testing

@Suite struct TemplateTests {
    let values = TemplateValues(
        secrets: [
            "key": .init(type: "symmetric-key", privateKey: [0x01, 0xAB], publicKey: [0x01, 0xAB]),
            "cert": .init(
                type: "cert-ecdsa", cert: [0x30, 0x03, 0x02, 0x01, 0x01], privateKey: [0x30, 0x00],
                publicKey: [0x30, 0x01]),
            "note": .init(type: "plain", publicKey: Array("hello world".utf8)),
            "nul": .init(type: "plain", publicKey: [0x61, 0x00, 0x62]),
        ],
        previousSecrets: ["key": .init(type: "symmetric-key", privateKey: [0xFF], publicKey: [0xFF])],
        marbleRun: ["RootCA": .init(type: "cert-ecdsa", cert: [0x30, 0x00])])

    private func render(_ text: String, _ kind: Template.Kind = .file) throws(TemplateError) -> String {
        String(decoding: try Template(parsing: Array(text.utf8)).render(values, as: kind), as: UTF8.self)
    }

    private func failure(_ text: String, _ kind: Template.Kind = .file) -> TemplateError? {
        do {
            _ = try render(text, kind)
            return nil
        } catch {
            return error
        }
    }

    @Test func rendersEachFunctionAsMarbleRunDoes() throws {
        #expect(try render("k={{ hex .Secrets.key }}") == "k=01ab")
        #expect(try render("{{ base64 .Secrets.key }}") == "Aas=")
        #expect(try render("{{raw .Secrets.note}}!") == "hello world!")
        #expect(try render("{{ hex .Secrets.cert.Cert }}") == "3003020101")
        #expect(
            try render("{{ pem .Secrets.cert.Cert }}")
                == "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n")
        #expect(try render("{{ pem .Secrets.cert.Private }}").hasPrefix("-----BEGIN PRIVATE KEY-----\nMAA=\n"))
        #expect(try render("{{ pem .Secrets.cert.Public }}").hasPrefix("-----BEGIN PUBLIC KEY-----\n"))
        #expect(try render("{{ hex .Previous.Secrets.key }}") == "ff")
        #expect(try render("{{ .Secrets.key | hex }}") == "01ab")
        #expect(try render("{{ hex .MarbleRun.RootCA.Cert }}") == "3000")
        #expect(try render("{{ string .Secrets.note }}", .env) == "hello world")
        #expect(try render("{{ raw .Secrets.note }}", .env) == "hello world")
        #expect(try render("no actions, { single } braces") == "no actions, { single } braces")
    }

    @Test func pemLinesAreSixtyFourColumns() throws {
        let long = TemplateValues(
            secrets: ["c": .init(type: "cert-rsa", cert: [UInt8](repeating: 7, count: 100))], marbleRun: [:])
        let text = String(
            decoding: try Template(parsing: Array("{{ pem .Secrets.c.Cert }}".utf8)).render(long, as: .file),
            as: UTF8.self)
        let lines = text.split(separator: "\n")
        #expect(lines.count == 5)
        #expect(lines[1].count == 64 && lines[2].count == 64 && lines[3].count == 8)
    }

    @Test func trimMarkersAndCommentsBehaveAsInGo() throws {
        #expect(try render("a  \n {{- hex .Secrets.key -}} \n b") == "a01abb")
        #expect(try render("x{{/* a comment */}}y{{- /* trimmed */ -}}  z") == "xyz")
    }

    @Test func positionsPointAtTheAction() {
        let error = failure("line one\n  {{ hexx .Secrets.key }}")
        #expect(error?.line == 2)
        #expect(error?.column == 3)
        #expect(error?.reason.contains("Did you mean 'hex'?") == true)
    }

    static let refused: [(String, Template.Kind, String)] = [
        ("{{ if .Secrets.key }}x{{ end }}", .file, "'if' is not supported"),
        ("{{ $x := 1 }}", .file, "variables"),
        ("{{ printf \"%s\" .Secrets.key }}", .file, "literals are not supported"),
        ("{{ hex (.Secrets.key) }}", .file, "parentheses"),
        ("{{ .Secrets.key }}", .file, "must be passed to a function"),
        ("{{ }}", .file, "empty action"),
        ("{{ hex .Secrets.key", .file, "unclosed action"),
        ("{{/* never closed }}", .file, "unclosed comment"),
        ("{{ hex .Secrets.key | base64 }}", .file, "only one function per action"),
        ("{{ hex .Secrets.key .Secrets.note }}", .file, "takes exactly one argument"),
        ("{{ hex .Marblerun.RootCA }}", .file, "capital R"),
        ("{{ hex .MarbleRun.SealKey }}", .file, ".MarbleRun has RootCA"),
        ("{{ hex .Secrets.key.Size }}", .file, "fields Cert, Private and Public"),
        ("{{ hex .Secrets }}", .file, "names no secret"),
        ("{{ hex .Values.x }}", .file, "can use .Secrets"),
        ("{{ hex .Secrets.my-key }}", .file, "letters, digits and '_'"),
        ("{{ pem .Secrets.key }}", .file, "pem needs .Cert, .Private or .Public"),
        ("{{ pem .Secrets.key.Cert }}", .file, "is empty: a symmetric-key secret has no .Cert"),
        ("{{ hex .Secrets.missing }}", .file, "does not exist"),
        ("{{ string .Secrets.note }}", .file, "'string' is for Env"),
        ("{{ string .Secrets.key }}", .env, "takes a plain secret"),
        ("{{ raw .Secrets.key }}", .env, "takes a plain secret"),
        ("{{ string .Secrets.nul }}", .env, "NUL byte"),
    ]

    @Test(arguments: refused)
    func refusesWithReason(text: String, kind: Template.Kind, reason: String) {
        let error = failure(text, kind)
        #expect(error?.reason.contains(reason) == true, "\(String(describing: error))")
    }

    @Test func actionsListReferences() throws {
        let template = try Template(parsing: Array("{{ pem .Secrets.a.Cert }} {{ .Previous.Secrets.b | raw }}".utf8))
        #expect(template.actions.map(\.reference.description) == [".Secrets.a.Cert", ".Previous.Secrets.b"])
        #expect(template.actions.map(\.function) == ["pem", "raw"])
    }
}
