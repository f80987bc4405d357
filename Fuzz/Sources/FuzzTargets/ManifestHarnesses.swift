import CoordinatorTesting
import Foundation
import JSONText
import Manifest

/// A manifest as a user sends it: JSON or YAML, decoded, validated and every template dry-run.
struct ManifestHarness: FuzzHarness {
    static let name = "manifest"
    static let surface = "a manifest (JSON or YAML): decoding, validation, template dry-run"
    init() {}

    static func seeds() throws -> [(name: String, bytes: [UInt8])] {
        var seeds = try sampleManifests()
        seeds.append(("activation manifest", ActivationManifest.bytes(signerID: [UInt8](repeating: 7, count: 32))))
        seeds.append(("yaml", Array(TemplateHarness.yamlManifest.utf8)))
        return seeds
    }

    func run(_ input: [UInt8]) -> Bool {
        let document = ManifestDocument.parse(input)
        _ = ManifestDocument.parse(input, options: ManifestOptions(strict: true))
        // A YAML manifest that passes is sent as its JSON, which must pass the same checks.
        if document.isValid, document.format == .yaml {
            precondition(ManifestDocument.parse(document.jsonBytes).isValid, "a valid YAML manifest's JSON is refused")
        }
        return document.isValid
    }
}

/// The template engine (compat §3): parsing, then rendering as a file and as an environment
/// variable with values of every secret type.
struct TemplateHarness: FuzzHarness {
    static let name = "template"
    static let surface = "a manifest template: parsing and rendering (file and env) over every secret type"
    static let yamlManifest = """
        Packages:
          app: {SignerID: "\(String(repeating: "ab", count: 32))", ProductID: 1, SecurityVersion: 1}
        Marbles:
          app:
            Package: app
            Parameters:
              Env: {KEY: "{{ hex .Secrets.key }}"}
        Secrets:
          key: {Type: symmetric-key, Size: 128}
          cert: {Type: cert-ecdsa, Size: 256, Cert: {Subject: {CommonName: app}}}
          rsa: {Type: cert-rsa, Size: 2048}
          ed: {Type: cert-ed25519}
          plain: {Type: plain, UserDefined: true}
        """
    let values: TemplateValues

    init() throws {
        guard let manifest = ManifestDocument.parse(Array(Self.yamlManifest.utf8)).manifest else {
            throw FuzzSetupError("the template target's manifest does not parse")
        }
        values = DryRun.values(for: manifest)
    }

    static func seeds() throws -> [(name: String, bytes: [UInt8])] {
        var seeds: [(name: String, bytes: [UInt8])] = [
            "{{ hex .Secrets.key }}", "{{ pem .Secrets.cert.Cert }}", "{{ pem .Secrets.rsa.Private }}",
            "{{ base64 .Secrets.ed.Public }}", "{{ raw .Secrets.plain }}", "{{ raw .Secrets.key }}",
            "{{ pem .MarbleRun.RootCA.Cert }}", "{{ pem .MarbleRun.MarbleCert.Private }}",
            "{{ hex .Previous.Secrets.key }}", "{{ .Secrets.key | hex }}",
            "a {{ hex .Secrets.key }} b {{ base64 .Secrets.key }} c", "plain text",
        ].map { ($0, Array($0.utf8)) }
        // Every template of MarbleRun's sample manifests.
        for name in TestData.manifestNames {
            guard case .object(let members) = try JSONParser().parse(TestData.bytes("manifests/\(name)")),
                case .object(let marbles)? = members.first(where: { $0.key == "Marbles" })?.value
            else { continue }
            for marble in marbles {
                guard case .object(let fields) = marble.value,
                    case .object(let parameters)? = fields.first(where: { $0.key == "Parameters" })?.value
                else { continue }
                for section in parameters {
                    guard case .object(let entries) = section.value else { continue }
                    for entry in entries {
                        if case .string(let text) = entry.value,
                            !seeds.contains(where: { $0.bytes == Array(text.utf8) })
                        {
                            seeds.append(("\(name) \(marble.key) \(entry.key)", Array(text.utf8)))
                        }
                    }
                }
            }
        }
        return seeds
    }

    func run(_ input: [UInt8]) -> Bool {
        guard let template = try? Template(parsing: input) else { return false }
        let file = (try? template.render(values, as: .file)) != nil
        let env = (try? template.render(values, as: .env)) != nil
        return file || env
    }
}

/// The strict JSON parser every body and document goes through, and the serializer (Go's form:
/// keys sorted, the last of duplicate keys kept): what it writes must parse and write back the same.
struct JSONHarness: FuzzHarness {
    static let name = "json"
    static let surface = "JSON text: the strict parser, and its serialized form parsing back to the same form"
    init() {}

    static func seeds() throws -> [(name: String, bytes: [UInt8])] {
        var seeds = try sampleManifests()
        seeds.append(("sgx collateral", try RealCollateral.bundle("sgx_quote")))
        seeds.append(("numbers", Array(#"[0,-0,1e5,1E-5,-1.5e+300,18446744073709551615,"\u00e9\ud83d\ude00\n"]"#.utf8)))
        return seeds
    }

    func run(_ input: [UInt8]) -> Bool {
        guard let value = try? JSONParser().parse(input) else { return false }
        let text = value.serialized()
        guard let again = try? JSONParser().parse(text) else {
            preconditionFailure("the serialized form of a parsed value does not parse")
        }
        precondition(again.serialized() == text, "the serialized form does not parse back to itself")
        return true
    }
}

/// MarbleRun's sample manifests from `../shared/testdata/manifests`.
func sampleManifests() throws -> [(name: String, bytes: [UInt8])] {
    try TestData.manifestNames.map { ("manifests/\($0)", try TestData.bytes("manifests/\($0)")) }
}
