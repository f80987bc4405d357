import ArgumentParser
import Attestation
import Crypto
import Foundation
import JSONText
import X509
import _CryptoExtras

/// The CLI's release, printed by `marblerun version`.
let marblerunVersion = "0.5.0"

/// Prints `value` as JSON with `--json`, else the human text.
func emit(_ value: JSONValue, text: @autoclosure () -> String, json: Bool) {
    if json {
        print(String(decoding: value.serialized(), as: UTF8.self))
    } else {
        print(text())
    }
}

extension JSONValue {
    var bytes: [UInt8]? { stringValue.flatMap { Data(base64Encoded: $0) }.map(Array.init) }

    static func base64(_ bytes: [UInt8]) -> JSONValue { .string(Data(bytes).base64EncodedString()) }
}

/// Writes `bytes` to `path` (mode `mode`), or prints them when `path` is nil.
func output(_ bytes: [UInt8], to path: String?, mode: Int = 0o644) throws {
    guard let path else {
        FileHandle.standardOutput.write(Data(bytes))
        return
    }
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes), attributes: [.posixPermissions: mode])
    else { throw CLIError("cannot write \(path)") }
}

/// `marblerun status ADDR`
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Print the Coordinator's state (1 recovery, 2 accepting a manifest, 3 running).")

    @Argument(help: "The Coordinator's client API, HOST:PORT.") var address: String

    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let data = try await connection.connect(address).call(.GET, "/api/v2/status")
        emit(data, text: "\(data["code"]?.intValue ?? 0): \(data["message"]?.stringValue ?? "")", json: connection.json)
    }
}

/// `marblerun check ADDR`: waits until the Coordinator answers.
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check", abstract: "Wait until the Coordinator answers, then print its state.")

    @Argument(help: "The Coordinator's client API, HOST:PORT.") var address: String

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "Seconds to wait before giving up.")
    var timeout: Int = 60

    func run() async throws {
        let deadline = ContinuousClock.now + .seconds(timeout)
        var lastError: (any Error)?
        repeat {
            do {
                let data = try await connection.connect(address, pin: false).call(.GET, "/api/v2/status")
                emit(
                    data, text: "\(data["code"]?.intValue ?? 0): \(data["message"]?.stringValue ?? "")",
                    json: connection.json)
                return
            } catch {
                lastError = error
                try await Task.sleep(for: .seconds(1))
            }
        } while ContinuousClock.now < deadline
        throw CLIError("the Coordinator did not answer within \(timeout) s: \(lastError.map { "\($0)" } ?? "")")
    }
}

/// `marblerun version`
struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print the CLI's version.")

    func run() {
        print("marblerun-swift CLI \(marblerunVersion) (MarbleRun-compatible client API v2)")
    }
}

/// `marblerun certificate root|intermediate|chain ADDR`
struct CertificateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certificate", abstract: "Print the Coordinator's certificates (after verifying it).",
        subcommands: [Root.self, Intermediate.self, Chain.self])

    enum Part { case root, intermediate, chain }

    static func run(_ part: Part, _ connection: ConnectionOptions, _ address: String, output path: String?)
        async throws
    {
        let data = try await connection.connect(address).call(.GET, "/api/v2/quote")
        let chain = (try? PEMChain.certificates(in: data["cert"]?.stringValue ?? "")) ?? []
        guard chain.count == 2 else { throw CLIError("the Coordinator sent \(chain.count) certificates, expected 2") }
        let selected: [Certificate]
        switch part {
        case .root: selected = [chain[1]]
        case .intermediate: selected = [chain[0]]
        case .chain: selected = chain
        }
        let pem = try selected.map { try $0.serializeAsPEM().pemString + "\n" }.joined()
        try output(Array(pem.utf8), to: path)
    }

    struct Root: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "root", abstract: "The root certificate (PEM).")
        @Argument(help: "The Coordinator's client API, HOST:PORT.") var address: String
        @OptionGroup var connection: ConnectionOptions
        @Option(name: [.customShort("o"), .long], help: "Write to this file instead of printing.") var output: String?
        func run() async throws { try await CertificateCommand.run(.root, connection, address, output: output) }
    }

    struct Intermediate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "intermediate", abstract: "The intermediate certificate (PEM).")
        @Argument(help: "The Coordinator's client API, HOST:PORT.") var address: String
        @OptionGroup var connection: ConnectionOptions
        @Option(name: [.customShort("o"), .long], help: "Write to this file instead of printing.") var output: String?
        func run() async throws { try await CertificateCommand.run(.intermediate, connection, address, output: output) }
    }

    struct Chain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "chain", abstract: "Intermediate and root certificates (PEM).")
        @Argument(help: "The Coordinator's client API, HOST:PORT.") var address: String
        @OptionGroup var connection: ConnectionOptions
        @Option(name: [.customShort("o"), .long], help: "Write to this file instead of printing.") var output: String?
        func run() async throws { try await CertificateCommand.run(.chain, connection, address, output: output) }
    }
}

/// `marblerun recover SECRET_FILE ADDR -k KEY`, and the air-gapped steps of
/// `recover-with-signature` under `recover` as well.
struct RecoverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recover",
        abstract: "Post your recovery secret to a Coordinator in recovery mode.",
        discussion: """
            SECRET_FILE holds your entry of the RecoverySecrets that `manifest set` returned (raw or \
            base64). It is decrypted with your recovery key (-k, RSA PEM), signed with the same key \
            and posted encrypted to the Coordinator's ephemeral recovery key; the Coordinator \
            accepts it only with that signature. The Coordinator in recovery mode serves a \
            temporary certificate, so it is verified with --era-config (not the pinned root) and \
            that certificate is not pinned. For a key that must stay on an offline machine, see \
            `marblerun recover-with-signature --help` (its steps are here too: `recover public-key`, \
            `recover encrypt-secret`, `recover sign-secret`).
            """,
        subcommands: [
            Post.self, RecoverPublicKeyCommand.self, RecoverEncryptSecretCommand.self, RecoverSignSecretCommand.self,
        ],
        defaultSubcommand: Post.self)

    /// `recover SECRET_FILE ADDR -k KEY` (the default subcommand).
    struct Post: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "post", abstract: "Decrypt, sign and post your recovery secret.")

        @Argument(help: "File with your encrypted recovery secret.")
        var secretFile: String

        @Argument(help: "The Coordinator's client API, HOST:PORT.") var address: String

        @OptionGroup var connection: ConnectionOptions

        @OptionGroup var key: RecoveryKeyOptions

        func run() async throws {
            let key = try key.require()
            let share = try RecoveryFile.share(
                try RecoveryFile.read(secretFile, what: "the recovery secret"), key: key)
            let signature = try key.signature(for: share)
            let client = try await connection.connect(address, pin: false)
            // The share travels encrypted to the Coordinator's ephemeral recovery key, not only inside TLS.
            let ephemeral = try await RecoverWithSignatureCommand.ephemeralKey(client)
            let sealed = Array(try ephemeral.encrypt(share, padding: .PKCS1_OAEP_SHA256))
            try await RecoverWithSignatureCommand.post(
                secret: sealed, signature: signature, client: client, json: connection.json)
        }
    }
}
