import ArgumentParser
import Crypto
import Foundation
import JSONText
import _CryptoExtras

/// `marblerun recover-with-signature SECRET_FILE ADDR -s SIGNATURE`, and the air-gapped steps
/// before it: `public-key` (online), `encrypt-secret` and `sign-secret` (offline).
struct RecoverWithSignatureCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recover-with-signature",
        abstract: "Post a recovery secret and its signature, made on another machine.",
        discussion: """
            For a recovery key that must not touch a networked machine. On the networked machine, \
            `public-key ADDR -o coordinator.pem` fetches the Coordinator's ephemeral recovery key \
            (after verifying the Coordinator with --era-config). Carry it to the offline machine, \
            where `encrypt-secret SECRET -k KEY --coordinator-pub-key coordinator.pem -o secret.enc` \
            decrypts your entry of RecoverySecrets and encrypts the share to that key, and \
            `sign-secret SECRET -k KEY -o secret.sig` signs the share. Carry both files back and \
            run `recover-with-signature secret.enc ADDR -s secret.sig`. The share leaves the \
            offline machine only encrypted to the Coordinator; files are written raw, printed as \
            base64, and read in either form.
            """,
        subcommands: [
            Post.self, RecoverPublicKeyCommand.self, RecoverEncryptSecretCommand.self, RecoverSignSecretCommand.self,
        ],
        defaultSubcommand: Post.self)

    /// `recover-with-signature SECRET_FILE ADDR -s SIGNATURE` (the default subcommand).
    struct Post: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "post", abstract: "Post the encrypted share and its signature.")

        @Argument(help: "The recovery secret: a share encrypted to the ephemeral key (encrypt-secret), or the share.")
        var secretFile: String

        @Argument(help: "The Coordinator's client API, HOST:PORT.") var address: String

        @Option(name: [.customShort("s"), .long], help: "The share's signature (sign-secret).")
        var signature: String

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let secret = try RecoveryFile.read(secretFile, what: "the recovery secret")
            let signature = try RecoveryFile.read(self.signature, what: "the signature")
            let client = try await connection.connect(address, pin: false)
            try await RecoverWithSignatureCommand.post(
                secret: secret, signature: signature, client: client, json: connection.json)
        }
    }

    /// Posts one holder's secret and signature to a Coordinator in recovery mode and prints
    /// how many secrets remain.
    static func post(secret: [UInt8], signature: [UInt8], client: CoordinatorClient, json: Bool) async throws {
        let answer = try await client.call(
            .POST, "/api/v2/recover",
            body: .object([
                JSONMember("recoverySecret", .base64(secret)),
                JSONMember("recoverySecretSignature", .base64(signature)),
            ]))
        emit(answer, text: answer["message"]?.stringValue ?? "", json: json)
    }

    /// The Coordinator's ephemeral recovery key, from its `/recover/public-key` answer.
    static func ephemeralKey(_ client: CoordinatorClient) async throws -> _RSA.Encryption.PublicKey {
        let offer = try await client.call(.GET, "/api/v2/recover/public-key")
        guard offer["algorithm"]?.stringValue == "RSA", let der = offer["ephemeralPublicKey"]?.bytes,
            let key = try? _RSA.Encryption.PublicKey(derRepresentation: der), key.keySizeInBits >= 2048
        else { throw CLIError("the Coordinator offered no usable ephemeral recovery key (RSA, 2048 bits or more)") }
        return key
    }
}

/// `marblerun recover-with-signature public-key ADDR [-o FILE]`
struct RecoverPublicKeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "public-key",
        abstract: "Fetch the Coordinator's ephemeral recovery key (PEM), after verifying the Coordinator.")

    @Argument(help: "The Coordinator's client API, HOST:PORT.") var address: String

    @Option(name: [.customShort("o"), .long], help: "Write the key to this file instead of printing it.")
    var output: String?

    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        // The recovery-mode certificate is temporary: verified by its quote, never pinned.
        let key = try await RecoverWithSignatureCommand.ephemeralKey(try await connection.connect(address, pin: false))
        try MarblerunCLI.output(Array((key.pemRepresentation + "\n").utf8), to: output)
    }
}

/// `marblerun recover-with-signature encrypt-secret SECRET_FILE --coordinator-pub-key PEM [-k KEY] [-o FILE]`
struct RecoverEncryptSecretCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encrypt-secret",
        abstract: "Encrypt your recovery share to the Coordinator's ephemeral key (offline).",
        discussion: """
            SECRET_FILE is your entry of RecoverySecrets (decrypted with -k) or the share itself. \
            No network is used.
            """)

    @Argument(help: "Your entry of RecoverySecrets, or the decrypted share.") var secretFile: String

    @Option(name: .customLong("coordinator-pub-key"), help: "The ephemeral key from `public-key` (PEM).")
    var coordinatorPublicKey: String

    @OptionGroup var key: RecoveryKeyOptions

    @Option(name: [.customShort("o"), .long], help: "Write the encrypted share to this file instead of printing it.")
    var output: String?

    func run() throws {
        guard let pem = FileManager.default.contents(atPath: coordinatorPublicKey), pem.count <= 64 << 10,
            let ephemeral = try? _RSA.Encryption.PublicKey(pemRepresentation: String(decoding: pem, as: UTF8.self)),
            ephemeral.keySizeInBits >= 2048
        else {
            throw CLIError("cannot read an RSA public key (PEM, 2048 bits or more) from \(coordinatorPublicKey)")
        }
        let share = try RecoveryFile.share(
            try RecoveryFile.read(secretFile, what: "the recovery secret"), key: try key.load())
        try RecoveryFile.write(Array(try ephemeral.encrypt(share, padding: .PKCS1_OAEP_SHA256)), to: output)
    }
}

/// `marblerun recover-with-signature sign-secret SECRET_FILE -k KEY [-o FILE]`
struct RecoverSignSecretCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign-secret",
        abstract: "Sign your recovery share with your recovery key (offline).",
        discussion: """
            SECRET_FILE is your entry of RecoverySecrets or the share itself; the signature is \
            over the share, as the Coordinator checks it. No network is used.
            """)

    @Argument(help: "Your entry of RecoverySecrets, or the decrypted share.") var secretFile: String

    @OptionGroup var key: RecoveryKeyOptions

    @Option(name: [.customShort("o"), .long], help: "Write the signature to this file instead of printing it.")
    var output: String?

    func run() throws {
        let key = try key.require()
        let share = try RecoveryFile.share(try RecoveryFile.read(secretFile, what: "the recovery secret"), key: key)
        try RecoveryFile.write(try key.signature(for: share), to: output)
    }
}
