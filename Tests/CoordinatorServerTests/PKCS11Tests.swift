import Attestation
import CoordinatorTesting
import Foundation
import Testing
import X509
import _CryptoExtras

/// A SoftHSM2 token of one test's own (Debian's softhsm2): keys are generated inside it by
/// OpenSC's pkcs11-tool, certificates are signed through it by GnuTLS's certtool, so that no
/// private key exists as a file at any point.
struct SoftHSMToken {
    static let module = "/usr/lib/softhsm/libsofthsm2.so"
    static let label = "marblerun"
    static let pin = "1234"
    static var isInstalled: Bool {
        ["/usr/bin/softhsm2-util", "/usr/bin/pkcs11-tool", "/usr/bin/certtool", module].allSatisfy {
            FileManager.default.isExecutableFile(atPath: $0) || FileManager.default.fileExists(atPath: $0)
        }
    }

    let directory: URL
    var configurationFile: String { directory.appendingPathComponent("softhsm2.conf").path }
    /// MarbleRun's `--pkcs11-config` for this token.
    var pkcs11Config: String { directory.appendingPathComponent("pkcs11.json").path }

    init(directory: URL) async throws {
        self.directory = directory
        let tokens = directory.appendingPathComponent("tokens")
        try FileManager.default.createDirectory(at: tokens, withIntermediateDirectories: true)
        try "directories.tokendir = \(tokens.path)\nobjectstore.backend = file\nlog.level = ERROR\n"
            .write(toFile: configurationFile, atomically: true, encoding: .utf8)
        try #"{"Path": "\#(Self.module)", "TokenLabel": "\#(Self.label)", "Pin": "\#(Self.pin)"}"#
            .write(toFile: pkcs11Config, atomically: true, encoding: .utf8)
        try await run(
            "softhsm2-util", ["--init-token", "--free", "--label", Self.label, "--pin", Self.pin, "--so-pin", "5678"])
    }

    /// Runs a tool with this token's SoftHSM2 configuration; fails the test on a non-zero exit.
    @discardableResult
    func run(_ tool: String, _ arguments: [String]) async throws -> ProcessRunner.Result {
        let result = try await ProcessRunner.run(
            URL(fileURLWithPath: "/usr/bin/env"), ["SOFTHSM2_CONF=\(configurationFile)", tool] + arguments)
        try #require(result.status == 0, "\(tool) \(arguments.joined(separator: " ")): \(result.stderr)")
        return result
    }

    /// Runs our CLI with this token's SoftHSM2 configuration.
    func cli(_ arguments: [String]) async throws -> ProcessRunner.Result {
        try await ProcessRunner.run(
            URL(fileURLWithPath: "/usr/bin/env"),
            ["SOFTHSM2_CONF=\(configurationFile)", CLIAgainstCoordinatorTests.cli.path] + arguments)
    }

    private var login: [String] {
        ["--module", Self.module, "--token-label", Self.label, "--login", "--pin", Self.pin]
    }

    /// A key pair made inside the token (`type`: `EC:prime256v1`, `rsa:2048`). `id` is hex, as
    /// pkcs11-tool takes it.
    func generateKeyPair(type: String, id: String, label: String) async throws {
        try await run("pkcs11-tool", login + ["--keypairgen", "--key-type", type, "--id", id, "--label", label])
    }

    /// A self-signed client certificate for the token's key `keyLabel`, signed by the token,
    /// stored in the token as `id`/`label` and returned as PEM (for the manifest).
    func certificate(for keyLabel: String, commonName: String, id: String, label: String) async throws -> String {
        let template = directory.appendingPathComponent("\(label).cfg").path
        try "cn = \"\(commonName)\"\nexpiration_days = 30\nsigning_key\ntls_www_client\n"
            .write(toFile: template, atomically: true, encoding: .utf8)
        let pem = directory.appendingPathComponent("\(label).pem").path
        try await run(
            "certtool",
            [
                "--generate-self-signed", "--provider", Self.module, "--load-privkey",
                "pkcs11:token=\(Self.label);object=\(keyLabel);type=private;pin-value=\(Self.pin)", "--template",
                template, "--outfile", pem,
            ])
        let text = try String(contentsOfFile: pem, encoding: .utf8)
        let der = directory.appendingPathComponent("\(label).der")
        try Data(try Certificate(pemEncoded: text).serializeAsPEM().derBytes).write(to: der)
        try await run(
            "pkcs11-tool", login + ["--write-object", der.path, "--type", "cert", "--id", id, "--label", label])
        return text
    }

    /// The public half of the token's key `label` (PEM SubjectPublicKeyInfo).
    func rsaPublicKeyPEM(label: String) async throws -> String {
        let der = directory.appendingPathComponent("\(label)-public.der").path
        try await run("pkcs11-tool", login + ["--read-object", "--type", "pubkey", "--label", label, "-o", der])
        return try _RSA.Signing.PublicKey(derRepresentation: Data(contentsOf: URL(fileURLWithPath: der)))
            .pemRepresentation
    }

    /// Every file under `directory` but the token's own store that holds a PEM private key.
    func privateKeyFiles() throws -> [String] {
        let files = FileManager.default.enumerator(atPath: directory.path)?.compactMap { $0 as? String } ?? []
        return try files.filter { path in
            guard !path.hasPrefix("tokens") else { return false }
            let url = directory.appendingPathComponent(path)
            guard (try url.resourceValues(forKeys: [.isRegularFileKey])).isRegularFile == true else { return false }
            return String(decoding: try Data(contentsOf: url), as: UTF8.self).contains("PRIVATE KEY")
        }
    }
}

/// Users and recovery holders whose keys are in a PKCS #11 token (SoftHSM2), through the real
/// CLI and Coordinator binaries.
@Suite(.enabled(if: SoftHSMToken.isInstalled, "needs softhsm2, opensc and gnutls-bin (scripts/test installs them)"))
struct PKCS11Tests {
    typealias Session = CLIAgainstCoordinatorTests.Session

    @Test func usersWhoseKeysAreInTheTokenReadSecretsAndAcknowledgeAnUpdate() async throws {
        let coordinator = try CoordinatorProcess()
        try await coordinator.start()
        let session = Session(coordinator: coordinator)
        let token = try await SoftHSMToken(directory: coordinator.directory.appendingPathComponent("hsm"))
        // admin: P-256, found by id ("A" is 0x41) and certificate label; reader: RSA (TLS 1.3
        // signs with RSA-PSS through the token), found by labels.
        try await token.generateKeyPair(type: "EC:prime256v1", id: "41", label: "admin-key")
        let adminPEM = try await token.certificate(for: "admin-key", commonName: "admin", id: "61", label: "admin-cert")
        try await token.generateKeyPair(type: "rsa:2048", id: "52", label: "reader-key")
        let readerPEM = try await token.certificate(
            for: "reader-key", commonName: "reader", id: "72", label: "reader-cert")
        let adminToken = [
            "--pkcs11-config", token.pkcs11Config, "--pkcs11-key-id", "A", "--pkcs11-cert-label", "admin-cert",
        ]
        let readerToken = [
            "--pkcs11-config", token.pkcs11Config, "--pkcs11-key-label", "reader-key", "--pkcs11-cert-id", "r",
        ]

        let platform = try SimulatedPlatform.load(from: coordinator.simulationDirectory)
        let uniqueID = Hex.encode(try SimulatedEnclave.uniqueID(of: CoordinatorProcess.binary))
        let era = try session.file("era.json", #"{"coordinator": {"UniqueID": "\#(uniqueID)"}}"#)
        let pinned = try await session.run(
            ["status", session.address, "--era-config", era, "--simulation", coordinator.simulationDirectory.path])
        try #require(pinned.status == 0, "\(pinned.stderr)")
        // The manifest's admin and reader are the token's certificates; updater1 has key files.
        let stand = try ["admin", "reader", "writer", "updater1"].map { try TestUser(name: $0) }
        func manifest(_ greeting: String) throws -> String {
            var text = String(
                decoding: UserManifest.bytes(
                    signerID: ActivationManifest.enclave(on: platform).signerID, admin: stand[0], reader: stand[1],
                    writer: stand[2], updaters: [stand[3]], updateThreshold: 2, greeting: greeting), as: UTF8.self)
            for (user, pem) in [(stand[0], adminPEM), (stand[1], readerPEM)] {
                let escaped = { (text: String) in
                    text.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "\n", with: "\\n")
                }
                text = text.replacingOccurrences(of: escaped(user.certificatePEM), with: escaped(pem))
            }
            return try session.file("manifest-\(greeting).json", text)
        }
        let version1 = try manifest("v1")
        let set = try await session.run(["manifest", "set", version1, session.address])
        try #require(set.status == 0, "\(set.stderr)")

        let key = Data((0..<16).map { UInt8($0 * 3) }).base64EncodedString()
        let secrets = try session.file("secrets.json", #"{"userKey": {"Key": "\#(key)"}}"#)
        let written = try await token.cli(
            ["secret", "set", secrets, session.address, "--coordinator-cert", session.certificate] + adminToken)
        #expect(written.status == 0, "\(written.stderr)")
        let read = try await token.cli(
            ["secret", "get", "userKey", session.address, "--json", "--coordinator-cert", session.certificate]
                + readerToken)
        #expect(read.status == 0 && read.stdout.contains(key), "\(read.stdout)\(read.stderr)")
        // The token's reader is the manifest's reader, not its admin: the Coordinator tells them apart.
        let forbidden = try await token.cli(
            ["secret", "set", secrets, session.address, "--coordinator-cert", session.certificate] + readerToken)
        #expect(forbidden.status != 0, "the reader may not write userKey")

        // A full update proposed by updater1 (key files), acknowledged by admin (the token).
        let updater = [
            "-c", try session.file("updater1.crt", stand[3].certificatePEM),
            "-k", try session.file("updater1.key", stand[3].keyPEM),
        ]
        let version2 = try manifest("v2")
        let proposed = try await session.run(["manifest", "update", "apply", version2, session.address] + updater)
        #expect(proposed.stdout.contains("1 more acknowledgement"), "\(proposed.stdout)\(proposed.stderr)")
        let acknowledged = try await token.cli(
            ["manifest", "update", "acknowledge", version2, session.address, "--coordinator-cert", session.certificate]
                + adminToken)
        #expect(
            acknowledged.status == 0 && acknowledged.stdout.contains("Update applied"),
            "\(acknowledged.stdout)\(acknowledged.stderr)")
        #expect(try await session.run(["manifest", "verify", version2, session.address]).status == 0)

        // Wrong selectors and a wrong PIN are refused with what is wrong.
        let wrongPIN = try session.file(
            "wrong-pin.json", #"{"Path": "\#(SoftHSMToken.module)", "TokenLabel": "marblerun", "Pin": "0000"}"#)
        let refusals: [([String], String)] = [
            (
                [
                    "--pkcs11-config", token.pkcs11Config, "--pkcs11-key-label", "nobody", "--pkcs11-cert-label",
                    "admin-cert",
                ], "no private key with label \"nobody\""
            ),
            (
                ["--pkcs11-config", wrongPIN, "--pkcs11-key-id", "A", "--pkcs11-cert-label", "admin-cert"],
                "CKR_PIN_INCORRECT"
            ),
            (
                ["--pkcs11-config", token.pkcs11Config, "--pkcs11-key-id", "A"],
                "--pkcs11-cert-id or --pkcs11-cert-label"
            ),
        ]
        for (arguments, message) in refusals {
            let refused = try await token.cli(
                ["secret", "get", "userKey", session.address, "--coordinator-cert", session.certificate] + arguments)
            #expect(refused.status != 0 && refused.stderr.contains(message), "\(arguments): \(refused.stderr)")
        }
        #expect(try token.privateKeyFiles() == [], "no private key of the token's users exists as a file")
        #expect(await coordinator.stop() == 0)
    }
}
