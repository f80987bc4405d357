import Attestation
import CoordinatorTesting
import Foundation
import Testing
import _CryptoExtras

/// MarbleRun's air-gapped recovery through the real CLI and Coordinator: the ephemeral key is
/// fetched (verified) on a networked machine, the share is decrypted, re-encrypted and signed on
/// an offline one (no Coordinator address), and the two files are posted.
@Suite struct AirGappedRecoveryTests {
    typealias Session = CLIAgainstCoordinatorTests.Session

    /// A Coordinator in recovery mode whose manifest has `holders` (threshold 2 when there are
    /// more than one), and the RecoverySecrets `manifest set` returned, by holder.
    struct InRecovery {
        let session: Session
        let connection: [String]
        let secrets: [String: String]

        /// `marblerun status` until the Coordinator is running (state 3), by deadline; the last answer.
        func waitUntilRunning() async throws -> ProcessRunner.Result {
            let deadline = ContinuousClock.now + .seconds(30)
            var running = try await session.run(["status", session.address] + connection)
            while ContinuousClock.now < deadline, !running.stdout.hasPrefix("3:") {
                try await Task.sleep(for: .milliseconds(200))
                running = try await session.run(["status", session.address] + connection)
            }
            return running
        }
    }

    static func recoveryMode(holders: [any ManifestRecoveryKey]) async throws -> InRecovery {
        let coordinator = try CoordinatorProcess()
        try await coordinator.start()
        let session = Session(coordinator: coordinator)
        let platform = try SimulatedPlatform.load(from: coordinator.simulationDirectory)
        let uniqueID = Hex.encode(try SimulatedEnclave.uniqueID(of: CoordinatorProcess.binary))
        let era = try session.file("era.json", #"{"coordinator": {"UniqueID": "\#(uniqueID)"}}"#)
        let connection = ["--era-config", era, "--simulation", coordinator.simulationDirectory.path]
        let users = try ["admin", "reader", "writer"].map { try TestUser(name: $0) }
        let manifest = UserManifest.bytes(
            signerID: ActivationManifest.enclave(on: platform).signerID, admin: users[0], reader: users[1],
            writer: users[2], recoveryKeys: holders, recoveryThreshold: holders.count > 1 ? 2 : 0)
        let manifestFile = try session.file("manifest.json", String(decoding: manifest, as: UTF8.self))
        let recoveryFile = coordinator.directory.appendingPathComponent("recovery.json").path
        let set = try await session.run(
            ["manifest", "set", manifestFile, session.address, "-r", recoveryFile] + connection)
        try #require(set.status == 0, "\(set.stderr)")
        #expect(await coordinator.stop() == 0)
        try FileManager.default.removeItem(
            at: coordinator.sealDirectory.appendingPathComponent("simulation-sealing-key.INSECURE"))
        try await coordinator.start()
        let status = try await session.run(["status", session.address] + connection)
        try #require(status.stdout.hasPrefix("1:"), "\(status.stdout)\(status.stderr)")
        let secrets =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: recoveryFile)))
            as? [String: String] ?? [:]
        return InRecovery(session: session, connection: connection, secrets: secrets)
    }

    /// Runs the CLI with no Coordinator address and no pinned certificate: what an offline
    /// machine can do.
    static func offline(_ arguments: [String]) async throws -> ProcessRunner.Result {
        try await ProcessRunner.run(CLIAgainstCoordinatorTests.cli, arguments)
    }

    @Test func twoHoldersRecoverWithKeysThatNeverSeeTheNetwork() async throws {
        let holders = try ["alice", "bob", "carol"].map { try TestRecoveryKey(name: $0) }
        let recovery = try await Self.recoveryMode(holders: holders)
        let session = recovery.session
        let publicKey = session.coordinator.directory.appendingPathComponent("coordinator.pem").path

        // Networked machine: the ephemeral key, after the Coordinator's quote is verified.
        let fetched = try await session.run(
            ["recover-with-signature", "public-key", session.address, "-o", publicKey] + recovery.connection)
        #expect(fetched.status == 0, "\(fetched.stderr)")
        #expect(try String(contentsOfFile: publicKey, encoding: .utf8).hasPrefix("-----BEGIN PUBLIC KEY-----"))
        // The same step under `recover`, printed: the same key.
        let printed = try await session.run(["recover", "public-key", session.address] + recovery.connection)
        let saved = try String(contentsOfFile: publicKey, encoding: .utf8)
        #expect(printed.status == 0 && printed.stdout == saved, "\(printed.stderr)")

        // Offline machine, alice: files written raw.
        let alice = try session.file("alice.secret", recovery.secrets["alice"] ?? "")
        let aliceKey = try session.file("alice.pem", holders[0].privateKeyPEM)
        let aliceEncrypted = session.coordinator.directory.appendingPathComponent("alice.enc").path
        let aliceSignature = session.coordinator.directory.appendingPathComponent("alice.sig").path
        let encrypted = try await Self.offline(
            [
                "recover-with-signature", "encrypt-secret", alice, "-k", aliceKey, "--coordinator-pub-key", publicKey,
                "-o", aliceEncrypted,
            ])
        #expect(encrypted.status == 0, "\(encrypted.stderr)")
        let signed = try await Self.offline(
            ["recover-with-signature", "sign-secret", alice, "-k", aliceKey, "-o", aliceSignature])
        #expect(signed.status == 0, "\(signed.stderr)")
        let share = try holders[0].decrypt(Array(Data(base64Encoded: recovery.secrets["alice"] ?? "") ?? Data()))
        let encryptedBytes = try Data(contentsOf: URL(fileURLWithPath: aliceEncrypted))
        #expect(encryptedBytes.count == 256, "RSA-OAEP to the 2048-bit ephemeral key")
        #expect(encryptedBytes.range(of: Data(share)) == nil, "the share leaves the offline machine encrypted")
        #expect(try Data(contentsOf: URL(fileURLWithPath: aliceSignature)) == Data(try holders[0].sign(share)))

        // A signature by a key that is not one of the manifest's recovery keys is refused.
        let mallory = try TestRecoveryKey(name: "mallory")
        let malloryKey = try session.file("mallory.pem", mallory.privateKeyPEM)
        let forged = session.coordinator.directory.appendingPathComponent("forged.sig").path
        let decryptedAlice = try session.file("alice.share", Data(share).base64EncodedString())
        let forging = try await Self.offline(
            ["recover-with-signature", "sign-secret", decryptedAlice, "-k", malloryKey, "-o", forged])
        #expect(forging.status == 0, "a plain share is signed as it is: \(forging.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: forged)) == Data(try mallory.sign(share)))
        let refused = try await session.run(
            ["recover-with-signature", aliceEncrypted, session.address, "-s", forged] + recovery.connection)
        #expect(refused.status != 0 && refused.stderr.contains("does not verify"), "\(refused.stderr)")
        // A flipped byte in the encrypted share does not decrypt at the Coordinator.
        var flipped = encryptedBytes
        flipped[100] ^= 1
        let flippedFile = session.coordinator.directory.appendingPathComponent("flipped.enc")
        try flipped.write(to: flippedFile)
        let corrupt = try await session.run(
            ["recover-with-signature", flippedFile.path, session.address, "-s", aliceSignature] + recovery.connection)
        #expect(corrupt.status != 0 && corrupt.stderr.contains("ephemeral"), "\(corrupt.stderr)")

        let first = try await session.run(
            ["recover-with-signature", aliceEncrypted, session.address, "-s", aliceSignature] + recovery.connection)
        #expect(first.status == 0 && first.stdout.contains("Remaining secrets: 1"), "\(first.stdout)\(first.stderr)")

        // Offline machine, carol: printed as base64 and carried as text.
        let carol = try session.file("carol.secret", recovery.secrets["carol"] ?? "")
        let carolKey = try session.file("carol.pem", holders[2].privateKeyPEM)
        let carolEncrypted = try await Self.offline(
            ["recover-with-signature", "encrypt-secret", carol, "-k", carolKey, "--coordinator-pub-key", publicKey])
        let carolSigned = try await Self.offline(["recover", "sign-secret", carol, "-k", carolKey])
        #expect(carolEncrypted.status == 0 && carolSigned.status == 0, "\(carolEncrypted.stderr)\(carolSigned.stderr)")
        let carolFiles = try (
            session.file("carol.enc.b64", carolEncrypted.stdout), session.file("carol.sig.b64", carolSigned.stdout)
        )
        let second = try await session.run(
            ["recover-with-signature", carolFiles.0, session.address, "-s", carolFiles.1] + recovery.connection)
        #expect(second.status == 0 && second.stdout.contains("Recovery successful"), "\(second.stdout)\(second.stderr)")

        let running = try await recovery.waitUntilRunning()
        #expect(running.stdout.hasPrefix("3:"), "\(running.stdout)\(running.stderr)")
        #expect(await session.coordinator.stop() == 0)
    }

    /// The offline steps refuse what they cannot use, with what to do, and write nothing.
    @Test func theOfflineStepsRefuseBadInputClearly() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("airgap-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        func file(_ name: String, _ bytes: [UInt8]) throws -> String {
            let url = directory.appendingPathComponent(name)
            try Data(bytes).write(to: url)
            return url.path
        }
        let holder = try TestRecoveryKey(name: "alice")
        let other = try TestRecoveryKey(name: "bob")
        let key = try file("alice.pem", Array(holder.privateKeyPEM.utf8))
        let publicKey = try file("coordinator.pem", Array(other.publicKeyPEM.utf8))
        let share = (0..<32).map { UInt8($0) }
        func sealed(to pem: String) throws -> [UInt8] {
            Array(try _RSA.Encryption.PublicKey(pemRepresentation: pem).encrypt(share, padding: .PKCS1_OAEP_SHA256))
        }
        let sealedToAlice = try file("alice.secret", try sealed(to: holder.publicKeyPEM))
        let sealedToBob = try file("bob.secret", try sealed(to: other.publicKeyPEM))
        let out = directory.appendingPathComponent("out").path

        let cases: [(arguments: [String], message: String)] = [
            (["sign-secret", sealedToAlice], "-k"),
            (
                ["sign-secret", sealedToAlice, "-k", try file("garbage.pem", Array("not a key".utf8))],
                "cannot read the RSA private key"
            ),
            (["sign-secret", sealedToBob, "-k", key], "does not decrypt"),
            (
                ["sign-secret", try file("odd.secret", [UInt8](repeating: 7, count: 100)), "-k", key],
                "neither a share nor a ciphertext"
            ),
            (["sign-secret", try file("empty.secret", []), "-k", key], "empty"),
            (["sign-secret", directory.appendingPathComponent("missing").path, "-k", key], "cannot read"),
            (["encrypt-secret", sealedToAlice, "-k", key, "--coordinator-pub-key", key], "RSA public key"),
            (["encrypt-secret", sealedToAlice, "--coordinator-pub-key", publicKey], "-k"),
            (["encrypt-secret", sealedToAlice, "-k", key], "--coordinator-pub-key"),
        ]
        for (arguments, message) in cases {
            let result = try await AirGappedRecoveryTests.offline(["recover-with-signature"] + arguments + ["-o", out])
            #expect(result.status != 0 && result.stderr.contains(message), "\(arguments): \(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out), "\(arguments) wrote a file")
        }
        // The good case, for contrast: the signature is over the decrypted share, and the file is 0600.
        let signed = try await AirGappedRecoveryTests.offline(
            ["recover-with-signature", "sign-secret", sealedToAlice, "-k", key, "-o", out])
        #expect(signed.status == 0, "\(signed.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: out)) == Data(try holder.sign(share)))
        let mode = try FileManager.default.attributesOfItem(atPath: out)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }
}
