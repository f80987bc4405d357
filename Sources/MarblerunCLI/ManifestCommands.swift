import ArgumentParser
import AuditLog
import ClusterStatement
import Crypto
import Foundation
import JSONText
import Manifest
import X509

/// A manifest file (JSON or YAML) as the JSON bytes the Coordinator is sent.
func manifestJSON(_ path: String) throws -> [UInt8] {
    let bytes: [UInt8]
    do throws(ManifestFile.ReadError) {
        bytes = try ManifestFile.read(path, limit: ManifestOptions().maximumSize)
    } catch {
        throw CLIError(error.description)
    }
    let document = ManifestDocument.parse(bytes)
    guard document.manifest != nil else {
        let first = document.errors.first.map(\.description) ?? "it does not parse"
        throw CLIError("\(path) is not a manifest: \(first) (see `marblerun manifest check \(path)`)")
    }
    return document.jsonBytes
}

func manifestBody(_ bytes: [UInt8]) -> JSONValue { .object([JSONMember("manifest", .base64(bytes))]) }

/// `marblerun manifest set FILE ADDR`
struct ManifestSetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set", abstract: "Set the Coordinator's manifest (JSON or YAML).")

    @Argument(help: "The manifest file.") var file: String
    @Argument(help: "The Coordinator's client API, HOST:PORT.") var address: String
    @OptionGroup var connection: ConnectionOptions
    @Option(
        name: [.customShort("r"), .customLong("recoverydata")],
        help: "Write the recovery secrets (JSON) to this file (0600) instead of printing them.")
    var recoveryData: String?
    @Flag(
        name: .customLong("overwrite-sealed-state"),
        help: "For a Coordinator in recovery mode: discard its sealed state for good and start over with FILE.")
    var overwriteSealedState = false

    func run() async throws {
        var body = manifestBody(try manifestJSON(file))
        if overwriteSealedState, case .object(let members) = body {
            body = .object(members + [JSONMember("overwriteSealedState", .bool(true))])
        }
        let answer = try await connection.connect(address).call(.POST, "/api/v2/manifest", body: body)
        if case .array(let warnings)? = answer["Warnings"] {
            for warning in warnings {
                FileHandle.standardError.write(Data("warning: \(warning.stringValue ?? "")\n".utf8))
            }
        }
        if let secrets = answer["RecoverySecrets"], secrets != .null {
            let text = secrets.serialized() + [UInt8(ascii: "\n")]
            if let recoveryData {
                try output(text, to: recoveryData, mode: 0o600)
                print("Manifest set. Recovery secrets written to \(recoveryData): give each to its key's holder.")
            } else {
                print("Manifest set. Recovery secrets (give each to its key's holder):")
                try output(text, to: nil)
            }
        } else {
            print("Manifest set.")
        }
    }
}

/// `marblerun manifest get ADDR [-s] [-u] [--keep-cert] [-o FILE]`
struct ManifestGetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get", abstract: "Print the Coordinator's manifest after checking the root key's signature on it.",
        discussion: """
            -u applies the package updates of the verified update log since the manifest was set \
            (each package's SecurityVersion as the Coordinator enforces it); -s wraps the output as \
            {"ManifestSignature": FINGERPRINT, "ManifestSignatureRootECDSA": BASE64, "Manifest": …}, \
            as MarbleRun prints it.
            """)

    @Argument(help: "The Coordinator's client API, HOST:PORT.") var address: String

    @OptionGroup var connection: ConnectionOptions
    @Option(name: [.customShort("o"), .long], help: "Write the manifest to this file.") var output: String?
    @Flag(name: [.customShort("s"), .long], help: "Also print the manifest's fingerprint and root signature.")
    var signature = false
    @Flag(
        name: [.customShort("u"), .customLong("display-update")],
        help: "Apply the package updates recorded in the verified update log.")
    var displayUpdate = false
    @OptionGroup var keepCert: KeepCertOption

    func validate() throws {
        try keepCert.validate(connection)
        if displayUpdate, connection.insecure {
            throw ValidationError("--display-update reads the signed update log, which -i cannot check")
        }
    }

    func run() async throws {
        let client = try await connection.connect(address)
        let answer = try await client.call(.GET, "/api/v2/manifest")
        guard var manifest = answer["manifest"]?.bytes else { throw CLIError("no manifest is set yet") }
        let rootSignature = answer["manifestSignatureRootECDSA"]?.bytes
        if let root = client.root {
            guard let rootSignature, RootSignature.isValid(rootSignature, over: manifest, root: root)
            else { throw CLIError("the manifest's signature does not verify with the Coordinator's root key") }
        }
        if displayUpdate, let root = client.root {
            let log = try await client.call(.GET, "/api/v2/update")
            guard case .array(let values)? = log["updateLog"] else { throw CLIError("the update log is malformed") }
            let entries: [AuditEntry]
            do {
                entries = try AuditLog.verify(values.compactMap(\.stringValue).map { Array($0.utf8) }, root: root)
            } catch {
                throw CLIError(error.description)
            }
            manifest = try ManifestUpdates.applying(entries, to: manifest)
        }
        if connection.json {
            emit(answer, text: "", json: true)
            return
        }
        if signature {
            // The fingerprint of the manifest as set, as MarbleRun prints it (also with -u).
            let fingerprint = answer["manifestFingerprint"]?.stringValue ?? ""
            let wrapped =
                #"{"ManifestSignature":"\#(fingerprint)","ManifestSignatureRootECDSA":"\#(rootSignature.map { Data($0).base64EncodedString() } ?? "")","Manifest":"#
            manifest = Array(wrapped.utf8) + manifest + Array("}\n".utf8)
        }
        try MarblerunCLI.output(manifest, to: output)
    }
}

/// MarbleRun's `--keep-cert`: keep the verified root in `--coordinator-cert`. This CLI keeps it
/// whenever `--era-config` verifies, so the flag's one effect is to refuse an unverified run.
struct KeepCertOption: ParsableArguments {
    @Flag(
        name: .customLong("keep-cert"),
        help:
            "Keep the verified root in --coordinator-cert (always done after --era-config verifies; refuses -i)."
    )
    var keepCert = false

    func validate(_ connection: ConnectionOptions) throws {
        if keepCert, connection.insecure { throw ValidationError("--keep-cert needs a verified Coordinator, not -i") }
    }
}

/// The manifest as the Coordinator enforces it: package updates from the update log applied.
enum ManifestUpdates {
    /// Sets `Packages.NAME.SecurityVersion` for every package update after the manifest was set
    /// (or last replaced by a full update); the rest of the document keeps its order.
    static func applying(_ entries: [AuditEntry], to manifest: [UInt8]) throws -> [UInt8] {
        let start = entries.lastIndex { [AuditEvent.manifestSet, AuditEvent.updateApplied].contains($0.event) } ?? -1
        var versions: [(String, String)] = []
        for entry in entries[(start + 1)...] where entry.event == AuditEvent.packageUpdated {
            guard let name = entry.details["package"], let version = entry.details["securityVersion"],
                UInt16(version) != nil
            else { throw CLIError("update log line \(entry.sequence) names no package and SecurityVersion") }
            versions.append((name, version))
        }
        guard !versions.isEmpty else { return manifest }
        guard case .object(var members) = try? JSONParser().parse(manifest),
            let packagesIndex = members.firstIndex(where: { $0.key.lowercased() == "packages" }),
            case .object(var packages) = members[packagesIndex].value
        else { throw CLIError("the manifest has no Packages object to apply updates to") }
        for (name, version) in versions {
            guard let index = packages.firstIndex(where: { $0.key == name }),
                case .object(var fields) = packages[index].value
            else {
                throw CLIError("the update log updates package \(name.prefix(64)), which the manifest does not have")
            }
            if let field = fields.firstIndex(where: { $0.key.lowercased() == "securityversion" }) {
                fields[field].value = .number(version)
            } else {
                fields.append(JSONMember("SecurityVersion", .number(version)))
            }
            packages[index].value = .object(fields)
        }
        members[packagesIndex].value = .object(packages)
        return JSONValue.object(members).serialized()
    }
}

/// `marblerun manifest verify FILE ADDR`
struct ManifestVerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Check that the Coordinator enforces exactly this manifest file.")

    @Argument(help: "The manifest file you expect.") var file: String
    @Argument(help: "The Coordinator's client API, HOST:PORT.") var address: String
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var keepCert: KeepCertOption

    func validate() throws { try keepCert.validate(connection) }

    func run() async throws {
        let expected = ManifestDocument.fingerprint(of: try manifestJSON(file))
        let answer = try await connection.connect(address).call(.GET, "/api/v2/manifest")
        let actual = answer["manifestFingerprint"]?.stringValue ?? ""
        guard actual == expected else {
            throw CLIError("the Coordinator enforces another manifest (fingerprint \(actual), \(file) has \(expected))")
        }
        print("OK: the Coordinator enforces \(file) (fingerprint \(expected))")
    }
}

/// `marblerun manifest log ADDR [--verify] [--file LOG]`
struct ManifestLogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log",
        abstract: "Print the update log; --verify checks its signatures and hash chain.",
        discussion: """
            With --file LOG the log is read from a file saved earlier (with -o) and checked offline \
            against the pinned root certificate (--coordinator-cert): nothing is sent anywhere. A \
            failing check names the first line that does not verify.
            """)

    @Argument(help: "The Coordinator's client API, HOST:PORT (not needed with --file).") var address: String?
    @OptionGroup var connection: ConnectionOptions
    @Flag(help: "Verify every line against the Coordinator's root certificate.") var verify = false
    @Option(help: "Verify this saved log instead of fetching one.") var file: String?
    @Option(name: [.customShort("o"), .long], help: "Write the log to this file.") var output: String?

    func run() async throws {
        let lines: [String]
        let root: Certificate?
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else { throw CLIError("cannot read \(file)") }
            lines = String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
            guard let pem = FileManager.default.contents(atPath: connection.coordinatorCert),
                let pinned = try? Certificate(pemEncoded: String(decoding: pem, as: UTF8.self))
            else {
                throw CLIError("no pinned Coordinator certificate at \(connection.coordinatorCert) to verify against")
            }
            root = pinned
        } else {
            guard let address else { throw CLIError("give the Coordinator's HOST:PORT, or --file LOG") }
            let client = try await connection.connect(address)
            let answer = try await client.call(.GET, "/api/v2/update")
            guard case .array(let values)? = answer["updateLog"] else { throw CLIError("the update log is malformed") }
            lines = values.compactMap(\.stringValue)
            root = client.root
        }
        if verify || file != nil {
            guard let root else { throw CLIError("--verify needs a verified Coordinator, not -i") }
            do {
                let entries = try AuditLog.verify(lines.map { Array($0.utf8) }, root: root)
                FileHandle.standardError.write(
                    Data("verified: \(entries.count) entries, signed by the Coordinator root, chain intact\n".utf8))
            } catch {
                throw CLIError(error.description)
            }
        }
        if file == nil || output != nil {
            try MarblerunCLI.output(Array(lines.map { $0 + "\n" }.joined().utf8), to: output)
        }
    }
}

/// `marblerun manifest update apply|acknowledge|cancel|get`
struct ManifestUpdateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "update", abstract: "Update the manifest: packages at once, full updates with acknowledgements.",
        subcommands: [Apply.self, Acknowledge.self, Cancel.self, Get.self])

    static func describe(_ answer: JSONValue) -> String {
        let missing = answer["missingAcknowledgments"]?.intValue ?? 0
        guard missing > 0 else { return "Update applied." }
        let users =
            (answer["missingUsers"].flatMap { value -> [String]? in
                if case .array(let names) = value { return names.compactMap(\.stringValue) }
                return nil
            } ?? []).joined(separator: ", ")
        return "Update pending: \(missing) more acknowledgement(s) needed (waiting for: \(users))."
    }

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "apply",
            abstract: "Raise package SecurityVersions (a manifest of only Packages) or propose a full update.")
        @Argument(help: "The update manifest.") var file: String
        @Argument(help: "The Coordinator's client API, HOST:PORT.") var address: String
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var user: UserOptions
        func run() async throws {
            let answer = try await connection.connect(address, identity: user.identity).call(
                .POST, "/api/v2/update", body: manifestBody(try manifestJSON(file)))
            emit(answer, text: ManifestUpdateCommand.describe(answer), json: connection.json)
        }
    }

    struct Acknowledge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "acknowledge", abstract: "Acknowledge the pending full update with the same manifest file.")
        @Argument(help: "The proposed manifest, byte for byte.") var file: String
        @Argument(help: "The Coordinator's client API, HOST:PORT.") var address: String
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var user: UserOptions
        func run() async throws {
            guard let bytes = FileManager.default.contents(atPath: file) else { throw CLIError("cannot read \(file)") }
            let answer = try await connection.connect(address, identity: user.identity).call(
                .POST, "/api/v2/update-manifest", body: manifestBody(Array(bytes)))
            emit(answer, text: ManifestUpdateCommand.describe(answer), json: connection.json)
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cancel", abstract: "Cancel the pending full update.")
        @Argument(help: "The Coordinator's client API, HOST:PORT.") var address: String
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var user: UserOptions
        func run() async throws {
            let answer = try await connection.connect(address, identity: user.identity).call(
                .POST, "/api/v2/update-cancel")
            emit(answer, text: answer["message"]?.stringValue ?? "Update cancelled.", json: connection.json)
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "get",
            abstract: "Print the pending full update's manifest (or, with --missing, who must still acknowledge).")
        @Argument(help: "The Coordinator's client API, HOST:PORT.") var address: String
        @OptionGroup var connection: ConnectionOptions
        @Flag(help: "Print the users who have not acknowledged yet.") var missing = false
        func run() async throws {
            let answer = try await connection.connect(address).call(.GET, "/api/v2/update-manifest")
            if connection.json {
                emit(answer, text: "", json: true)
            } else if missing {
                print(answer["message"]?.stringValue ?? "")
            } else {
                try output(answer["manifest"]?.bytes ?? [], to: nil)
            }
        }
    }
}

/// The root key's ECDSA signature (ASN.1 DER) over SHA-256 of some bytes.
enum RootSignature {
    static func isValid(_ signature: [UInt8], over bytes: [UInt8], root: Certificate) -> Bool {
        StatementVerifier.isValidRootSignature(signature, over: bytes, root: root)
    }
}
