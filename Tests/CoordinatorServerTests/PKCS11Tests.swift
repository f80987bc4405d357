import Attestation
import CoordinatorTesting
import Foundation
import Testing
import X509
import _CryptoExtras

/// A PKCS #11 soft token for one test, with keys generated inside it by OpenSC's pkcs11-tool and
/// certificates signed through it by GnuTLS's certtool, so that no private key exists as a file
/// at any point. Two from Debian's packages: SoftHSM2 (a token directory of the test's own) and
/// openCryptoki's soft token (one per machine, behind its slot daemon), because each lacks a
/// mechanism the other has: SoftHSM2 2.6 decrypts RSA-OAEP with SHA-1 only, openCryptoki 3.8
/// signs PKCS #1 v1.5 with SHA-1 only.
struct TestToken {
    static let softHSMModule = "/usr/lib/softhsm/libsofthsm2.so"
    static let openCryptokiModule = "/usr/lib/x86_64-linux-gnu/pkcs11/libopencryptoki.so"
    static let label = "marblerun"
    static let tools = ["/usr/bin/pkcs11-tool", "/usr/bin/certtool"]

    static var softHSMIsInstalled: Bool { allExist(tools + ["/usr/bin/softhsm2-util", softHSMModule]) }
    static var openCryptokiIsInstalled: Bool { allExist(tools + ["/usr/sbin/pkcsslotd", openCryptokiModule]) }

    private static func allExist(_ paths: [String]) -> Bool {
        paths.allSatisfy { FileManager.default.fileExists(atPath: $0) }
    }

    let directory: URL
    let module: String
    let pin: String
    /// Set for the tools and the CLI (SoftHSM2 finds its token directory through it).
    let environment: [String]
    /// MarbleRun's `--pkcs11-config` for this token.
    var pkcs11Config: String { directory.appendingPathComponent("pkcs11.json").path }

    private init(directory: URL, module: String, pin: String, environment: [String]) throws {
        self.directory = directory
        self.module = module
        self.pin = pin
        self.environment = environment
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try #"{"Path": "\#(module)", "TokenLabel": "\#(Self.label)", "Pin": "\#(pin)"}"#
            .write(toFile: pkcs11Config, atomically: true, encoding: .utf8)
    }

    /// A new SoftHSM2 token in `directory`.
    static func softHSM(directory: URL) async throws -> TestToken {
        let tokens = directory.appendingPathComponent("tokens")
        try FileManager.default.createDirectory(at: tokens, withIntermediateDirectories: true)
        let configuration = directory.appendingPathComponent("softhsm2.conf").path
        let token = try TestToken(
            directory: directory, module: softHSMModule, pin: "1234", environment: ["SOFTHSM2_CONF=\(configuration)"])
        try "directories.tokendir = \(tokens.path)\nobjectstore.backend = file\nlog.level = ERROR\n"
            .write(toFile: configuration, atomically: true, encoding: .utf8)
        try await token.run(
            "softhsm2-util", ["--init-token", "--free", "--label", label, "--pin", token.pin, "--so-pin", "5678"])
        return token
    }

    /// openCryptoki's soft token (Debian's configuration puts it in slot 3), emptied by
    /// `C_InitToken` with the package's default SO PIN; the slot daemon is started when it is not
    /// running (it needs root, or the `pkcs11` group). Test files go to `directory`.
    static func openCryptoki(directory: URL) async throws -> TestToken {
        for path in ["/var/lib/opencryptoki/swtok/TOK_OBJ", "/var/lock/opencryptoki/swtok", "/run/opencryptoki"] {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
        let running = try await ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/pgrep"), ["-x", "pkcsslotd"])
        if running.status != 0 {
            let started = try await ProcessRunner.run(URL(fileURLWithPath: "/usr/sbin/pkcsslotd"), [])
            try #require(started.status == 0, "pkcsslotd: \(started.stderr)")
        }
        let token = try TestToken(directory: directory, module: openCryptokiModule, pin: "2468", environment: [])
        let slot = ["--module", openCryptokiModule, "--slot", "3"]
        let soPIN = "87654321"
        // The daemon answers once it has read its configuration: wait by deadline for the slot.
        let deadline = ContinuousClock.now + .seconds(20)
        while true {
            let slots = try await ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/pkcs11-tool"), slot + ["-L"])
            if slots.status == 0, slots.stdout.contains("IBM SoftTok") { break }
            try #require(ContinuousClock.now < deadline, "openCryptoki's slot 3 did not appear: \(slots.stderr)")
            try await Task.sleep(for: .milliseconds(200))
        }
        try await token.run("pkcs11-tool", slot + ["--init-token", "--so-pin", soPIN, "--label", label])
        // The SO sets a PIN the user must change before the token lets them in.
        try await token.run(
            "pkcs11-tool",
            slot + ["--login", "--login-type", "so", "--so-pin", soPIN, "--init-pin", "--pin", "11111111"])
        try await token.run(
            "pkcs11-tool", slot + ["--login", "--pin", "11111111", "--change-pin", "--new-pin", token.pin])
        return token
    }

    /// Runs a tool with this token's environment; fails the test on a non-zero exit.
    @discardableResult
    func run(_ tool: String, _ arguments: [String]) async throws -> ProcessRunner.Result {
        let result = try await ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/env"), environment + [tool] + arguments)
        try #require(result.status == 0, "\(tool) \(arguments.joined(separator: " ")): \(result.stderr)")
        return result
    }

    /// Runs our CLI with this token's environment.
    func cli(_ arguments: [String]) async throws -> ProcessRunner.Result {
        try await ProcessRunner.run(
            URL(fileURLWithPath: "/usr/bin/env"), environment + [CLIAgainstCoordinatorTests.cli.path] + arguments)
    }

    private var login: [String] {
        ["--module", module, "--token-label", Self.label, "--login", "--pin", pin]
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
                "--generate-self-signed", "--provider", module, "--load-privkey",
                "pkcs11:token=\(Self.label);object=\(keyLabel);type=private;pin-value=\(pin)", "--template",
                template, "--outfile", pem,
            ])
        let text = try String(contentsOfFile: pem, encoding: .utf8)
        let der = directory.appendingPathComponent("\(label).der")
        try Data(try Certificate(pemEncoded: text).serializeAsPEM().derBytes).write(to: der)
        try await run(
            "pkcs11-tool", login + ["--write-object", der.path, "--type", "cert", "--id", id, "--label", label])
        return text
    }

    /// A recovery holder's RSA-2048 key made inside the token, as the manifest lists it.
    func recoveryKey(name: String, id: String, label: String) async throws -> RecoveryPublicKey {
        try await generateKeyPair(type: "rsa:2048", id: id, label: label)
        return RecoveryPublicKey(name: name, publicKeyPEM: try await rsaPublicKeyPEM(label: label))
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
@Suite(.enabled(if: TestToken.softHSMIsInstalled, "needs softhsm2, opensc and gnutls-bin (scripts/test installs them)"))
struct PKCS11Tests {
    typealias Session = CLIAgainstCoordinatorTests.Session

    @Test func usersWhoseKeysAreInTheTokenReadSecretsAndAcknowledgeAnUpdate() async throws {
        let coordinator = try CoordinatorProcess()
        try await coordinator.start()
        let session = Session(coordinator: coordinator)
        let token = try await TestToken.softHSM(directory: coordinator.directory.appendingPathComponent("hsm"))
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
            "wrong-pin.json", #"{"Path": "\#(TestToken.softHSMModule)", "TokenLabel": "marblerun", "Pin": "0000"}"#)
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

extension PKCS11Tests {
    /// SoftHSM2 2.6 cannot decrypt RSA-OAEP with SHA-256: the CLI says so and what to use, and the
    /// Coordinator stays in recovery mode, waiting for the share.
    @Test func aTokenWithoutOAEPSHA256IsRefusedClearly() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hsm-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let token = try await TestToken.softHSM(directory: directory)
        let holder = try await token.recoveryKey(name: "holder", id: "73", label: "holder-key")
        let recovery = try await AirGappedRecoveryTests.recoveryMode(holders: [holder])
        let session = recovery.session
        let secret = try session.file("holder.secret", recovery.secrets["holder"] ?? "")
        let selecting = ["--pkcs11-config", token.pkcs11Config, "--pkcs11-key-label", "holder-key"]
        let refused = try await token.cli(["recover", secret, session.address] + recovery.connection + selecting)
        #expect(
            refused.status != 0 && refused.stderr.contains("cannot decrypt RSA-OAEP with SHA-256"), "\(refused.stderr)")
        let signing = try await token.cli(["recover-with-signature", "sign-secret", secret] + selecting)
        #expect(signing.status != 0 && signing.stderr.contains("SoftHSM2 before 2.7"), "\(signing.stderr)")
        let status = try await session.run(["status", session.address] + recovery.connection)
        #expect(status.stdout.hasPrefix("1:"), "still in recovery mode: \(status.stdout)\(status.stderr)")
        #expect(await session.coordinator.stop() == 0)
    }
}

/// Recovery holders whose keys are in openCryptoki's soft token, which decrypts RSA-OAEP with
/// SHA-256 (what RecoverySecrets are encrypted with) and signs through `CKM_RSA_PKCS`.
@Suite(
    .enabled(
        if: TestToken.openCryptokiIsInstalled, "needs opencryptoki, opensc and gnutls-bin (scripts/test installs them)")
)
struct PKCS11RecoveryTests {
    @Test func holdersWhoseKeysAreInTheTokenRecoverOnlineAndAirGapped() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ock-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let token = try await TestToken.openCryptoki(directory: directory)
        let holders = [
            try await token.recoveryKey(name: "online", id: "71", label: "online-key"),
            try await token.recoveryKey(name: "offline", id: "72", label: "offline-key"),
        ]
        let recovery = try await AirGappedRecoveryTests.recoveryMode(holders: holders)
        let session = recovery.session
        func selecting(_ label: String) -> [String] {
            ["--pkcs11-config", token.pkcs11Config, "--pkcs11-key-label", label]
        }

        // Online: the token decrypts the share and signs it; the CLI posts it.
        let online = try session.file("online.secret", recovery.secrets["online"] ?? "")
        let first = try await token.cli(
            ["recover", online, session.address] + recovery.connection + selecting("online-key"))
        #expect(first.status == 0 && first.stdout.contains("Remaining secrets: 1"), "\(first.stdout)\(first.stderr)")
        // A key of the token that is not this entry's does not decrypt it, and says so.
        let offline = try session.file("offline.secret", recovery.secrets["offline"] ?? "")
        let mismatched = try await token.cli(
            ["recover-with-signature", "sign-secret", offline] + selecting("online-key"))
        #expect(mismatched.status != 0 && mismatched.stderr.contains("does not decrypt"), "\(mismatched.stderr)")

        // Air-gapped: the ephemeral key fetched on the networked machine; the token used with no address.
        let publicKey = directory.appendingPathComponent("coordinator.pem").path
        let fetched = try await session.run(
            ["recover-with-signature", "public-key", session.address, "-o", publicKey] + recovery.connection)
        try #require(fetched.status == 0, "\(fetched.stderr)")
        let encryptedFile = directory.appendingPathComponent("offline.enc").path
        let signatureFile = directory.appendingPathComponent("offline.sig").path
        let encrypted = try await token.cli(
            [
                "recover-with-signature", "encrypt-secret", offline, "--coordinator-pub-key", publicKey, "-o",
                encryptedFile,
            ]
                + selecting("offline-key"))
        let signed = try await token.cli(
            ["recover-with-signature", "sign-secret", offline, "-o", signatureFile] + selecting("offline-key"))
        #expect(encrypted.status == 0 && signed.status == 0, "\(encrypted.stderr)\(signed.stderr)")
        let encryptedShare = try Data(contentsOf: URL(fileURLWithPath: encryptedFile))
        #expect(encryptedShare.count == 256, "RSA-OAEP to the 2048-bit ephemeral key")
        #expect(try Data(contentsOf: URL(fileURLWithPath: signatureFile)).count == 256, "an RSA-2048 signature")
        let second = try await session.run(
            ["recover-with-signature", encryptedFile, session.address, "-s", signatureFile] + recovery.connection)
        #expect(second.status == 0 && second.stdout.contains("Recovery successful"), "\(second.stdout)\(second.stderr)")

        let running = try await recovery.waitUntilRunning()
        #expect(running.stdout.hasPrefix("3:"), "\(running.stdout)\(running.stderr)")
        #expect(try token.privateKeyFiles() == [], "no recovery private key exists as a file")
        #expect(await session.coordinator.stop() == 0)
    }
}
