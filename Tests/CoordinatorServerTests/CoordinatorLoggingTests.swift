import Attestation
import CoordinatorTesting
import Foundation
import JSONText
import Testing

/// MarbleRun's logging settings on the real binary: `EDG_LOG_FORMAT=json`, `EDG_DEBUG_LOGGING`,
/// `EDG_HTTP_ERROR_LOG_LEVEL`, and `OE_SIMULATION=1`.
@Suite struct CoordinatorLoggingTests {
    @Test func jsonLinesWithStableKeysAndNoSecretValues() async throws {
        let coordinator = try CoordinatorProcess()
        try await coordinator.start(
            extraArguments: [],
            environment: [
                "EDG_LOG_FORMAT": "json", "EDG_DEBUG_LOGGING": "1", "OE_SIMULATION": "1",
                "EDG_HTTP_ERROR_LOG_LEVEL": "warning",
            ],
            simulation: false)
        let session = CLIAgainstCoordinatorTests.Session(coordinator: coordinator)
        // OE_SIMULATION=1 kept the simulated platform inside the seal directory.
        let simulation = coordinator.sealDirectory.appendingPathComponent("simulation")
        let platform = try SimulatedPlatform.load(from: simulation)
        let uniqueID = Hex.encode(try SimulatedEnclave.uniqueID(of: CoordinatorProcess.binary))
        let era = try session.file("era.json", #"{"coordinator": {"UniqueID": "\#(uniqueID)"}}"#)
        let status = try await session.run([
            "status", session.address, "--era-config", era, "--simulation", simulation.path,
        ])
        #expect(status.status == 0, "\(status.stderr)")

        // A manifest with a recovery key and a user secret, a refused call, a wrong body.
        let users = try ["admin", "reader", "writer"].map { try TestUser(name: $0) }
        let holder = try TestRecoveryKey(name: "alice")
        let manifest = UserManifest.bytes(
            signerID: ActivationManifest.enclave(on: platform).signerID, admin: users[0], reader: users[1],
            writer: users[2], recoveryKeys: [holder], recoveryThreshold: 0)
        let manifestFile = try session.file("manifest.json", String(decoding: manifest, as: UTF8.self))
        let recoveryFile = coordinator.directory.appendingPathComponent("recovery.json").path
        let set = try await session.run(["manifest", "set", manifestFile, session.address, "-r", recoveryFile])
        #expect(set.status == 0, "\(set.stderr)")
        let secretBytes = (0..<16).map { UInt8($0 * 7 + 3) }
        let secretValue = Data(secretBytes).base64EncodedString()
        let secrets = try session.file("secrets.json", #"{"userKey": {"Key": "\#(secretValue)"}}"#)
        let writer = [
            "-c", try session.file("w.crt", users[2].certificatePEM), "-k", try session.file("w.key", users[2].keyPEM),
        ]
        #expect(try await session.run(["secret", "set", secrets, session.address] + writer).status == 0)
        let forbidden = try await session.run(["secret", "get", "userKey", session.address] + writer)
        #expect(forbidden.status != 0)
        // secret get -o: the secrets JSON in a 0600 file, nothing on standard output.
        let reader = [
            "-c", try session.file("r.crt", users[1].certificatePEM), "-k", try session.file("r.key", users[1].keyPEM),
        ]
        let secretsFile = coordinator.directory.appendingPathComponent("secrets-out.json").path
        let saved = try await session.run(["secret", "get", "userKey", session.address, "-o", secretsFile] + reader)
        #expect(saved.status == 0 && saved.stdout.isEmpty, "\(saved.stderr)")
        let written = try JSONParser().parse(Array(try Data(contentsOf: URL(fileURLWithPath: secretsFile))))
        #expect(written["userKey"]?["Private"]?.stringValue == secretValue)
        let mode = try FileManager.default.attributesOfItem(atPath: secretsFile)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        _ = await coordinator.stop()

        let log = try String(contentsOf: coordinator.logFile, encoding: .utf8)
        let lines = log.split(separator: "\n", omittingEmptySubsequences: true)
        #expect(lines.count >= 5, "\(log)")
        var levels: Set<String> = []
        var refusals: [String] = []
        for line in lines {
            let value = try JSONParser().parse(Array(line.utf8))
            #expect(
                value.objectValue?.map(\.key) == ["level", "logger", "message", "metadata", "time"],
                "not the stable keys: \(line)")
            #expect(value["metadata"]?.objectValue?.allSatisfy { $0.value.stringValue != nil } == true, "\(line)")
            #expect(value["time"]?.stringValue.flatMap { try? Date($0, strategy: .iso8601) } != nil, "\(line)")
            levels.insert(value["level"]?.stringValue ?? "")
            if value["message"]?.stringValue == "request refused" { refusals.append(value["level"]?.stringValue ?? "") }
        }
        #expect(levels.contains("debug"), "EDG_DEBUG_LOGGING=1 logs at debug: \(levels)")
        #expect(log.contains("OE_SIMULATION=1") && log.contains("SIMULATION MODE"))
        // EDG_HTTP_ERROR_LOG_LEVEL=warning: the refused secret read is a warning.
        #expect(!refusals.isEmpty && refusals.allSatisfy { $0 == "warning" }, "\(refusals)")
        #expect(log.contains(#""status":"403""#), "\(log)")

        // No secret value in any form: the user secret, the recovery secret, the root key.
        let recovery = try String(contentsOfFile: recoveryFile, encoding: .utf8)
        let recoverySecret = try #require(
            (try JSONParser().parse(Array(recovery.utf8))).objectValue?.first?.value.stringValue)
        for needle in [secretValue, Hex.encode(secretBytes), recoverySecret, String(recoverySecret.prefix(24))] {
            #expect(!log.contains(needle), "a secret value is in the log")
        }
        #expect(!log.contains("PRIVATE KEY"))
    }

    @Test func unknownFormatsAndLevelsAreRefusedByName() async throws {
        for (name, value) in [("EDG_LOG_FORMAT", "xml"), ("EDG_HTTP_ERROR_LOG_LEVEL", "loud")] {
            let coordinator = try CoordinatorProcess()
            await #expect(throws: (any Error).self) {
                try await coordinator.start(environment: [name: value])
            }
            let log = try String(contentsOf: coordinator.logFile, encoding: .utf8)
            #expect(log.contains(value), "\(name)=\(value): \(log)")
        }
    }
}
