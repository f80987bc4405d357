import Attestation
import CoordinatorTesting
import Foundation
import Testing
import X509

/// The real `marblerun` CLI against the real Coordinator binary: verify and pin, set the
/// manifest, secrets by role, a package update, the verified log, and recovery.
@Suite struct CLIAgainstCoordinatorTests {
    static let cli = CoordinatorProcess.product("marblerun")

    struct Session {
        let coordinator: CoordinatorProcess
        var address: String { "localhost:\(coordinator.clientPort)" }
        var certificate: String { coordinator.directory.appendingPathComponent("pinned-root.pem").path }

        /// Runs `marblerun ARGS` with the pinned-certificate path appended.
        func run(_ arguments: [String]) async throws -> ProcessRunner.Result {
            try await ProcessRunner.run(cli, arguments + ["--coordinator-cert", certificate])
        }

        func file(_ name: String, _ text: String) throws -> String {
            try CoordinatorBinaryTests.write(text, name, in: coordinator.directory)
        }
    }

    @Test func theCLIVerifiesPinsAndManagesTheCoordinator() async throws {
        let coordinator = try CoordinatorProcess()
        try await coordinator.start()
        let session = Session(coordinator: coordinator)
        let platform = try SimulatedPlatform.load(from: coordinator.simulationDirectory)
        let simulation = ["--simulation", coordinator.simulationDirectory.path]
        let uniqueID = Hex.encode(try SimulatedEnclave.uniqueID(of: CoordinatorProcess.binary))
        let era = try session.file("era.json", #"{"coordinator": {"UniqueID": "\#(uniqueID)", "Debug": false}}"#)
        let wrongEra = try session.file(
            "wrong-era.json", #"{"coordinator": {"UniqueID": "\#(String(repeating: "ab", count: 32))"}}"#)

        // Nothing pinned yet, no era config: refused with what to do.
        let unpinned = try await session.run(["status", session.address])
        #expect(unpinned.status != 0 && unpinned.stderr.contains("--era-config"), "\(unpinned.stderr)")
        let wrong = try await session.run(["status", session.address, "--era-config", wrongEra] + simulation)
        #expect(wrong.status != 0 && wrong.stderr.contains("era config"), "\(wrong.stderr)")
        let status = try await session.run(["status", session.address, "--era-config", era] + simulation)
        #expect(status.status == 0 && status.stdout.hasPrefix("2:"), "\(status.stdout)\(status.stderr)")

        let users = try ["admin", "reader", "writer"].map { try TestUser(name: $0) }
        var identity: [String: [String]] = [:]
        for user in users {
            identity[user.name] = [
                "-c", try session.file("\(user.name).crt", user.certificatePEM),
                "-k", try session.file("\(user.name).key", user.keyPEM),
            ]
        }
        let holders = try ["alice", "bob", "carol"].map { try TestRecoveryKey(name: $0) }
        let manifest = UserManifest.bytes(
            signerID: ActivationManifest.enclave(on: platform).signerID, admin: users[0], reader: users[1],
            writer: users[2], recoveryKeys: holders, recoveryThreshold: 2)
        let manifestFile = try session.file("manifest.json", String(decoding: manifest, as: UTF8.self))
        let recoveryFile = coordinator.directory.appendingPathComponent("recovery.json").path
        // Pinned from here on: no era config needed.
        let set = try await session.run(["manifest", "set", manifestFile, session.address, "-r", recoveryFile])
        #expect(set.status == 0 && set.stdout.contains("Manifest set"), "\(set.stdout)\(set.stderr)")
        let verify = try await session.run(["manifest", "verify", manifestFile, session.address])
        #expect(verify.status == 0 && verify.stdout.hasPrefix("OK"), "\(verify.stderr)")
        let get = try await session.run(["manifest", "get", session.address])
        #expect(get.status == 0 && Array(get.stdoutData) == manifest, "\(get.stderr)")

        let key = Data((0..<16).map { UInt8($0) }).base64EncodedString()
        let secrets = try session.file("secrets.json", #"{"userKey": {"Key": "\#(key)"}}"#)
        let setSecret = try await session.run(["secret", "set", secrets, session.address] + identity["writer"]!)
        #expect(setSecret.status == 0, "\(setSecret.stderr)")
        let read = try await session.run(["secret", "get", "userKey", session.address, "--json"] + identity["reader"]!)
        #expect(read.status == 0 && read.stdout.contains(key), "\(read.stdout)\(read.stderr)")
        let forbidden = try await session.run(["secret", "get", "userKey", session.address] + identity["writer"]!)
        #expect(forbidden.status != 0 && forbidden.stderr.contains("may not read"), "\(forbidden.stderr)")

        let update = try session.file("update.json", #"{"Packages": {"backend": {"SecurityVersion": 3}}}"#)
        let applied = try await session.run(
            ["manifest", "update", "apply", update, session.address] + identity["admin"]!)
        #expect(applied.status == 0 && applied.stdout.contains("Update applied"), "\(applied.stderr)")
        let log = try await session.run(["manifest", "log", session.address, "--verify"])
        #expect(log.status == 0 && log.stderr.contains("verified: 3 entries"), "\(log.stderr)")
        #expect(log.stdout.split(separator: "\n").count == 3)

        let rootFile = coordinator.directory.appendingPathComponent("root.pem").path
        #expect(try await session.run(["certificate", "root", session.address, "-o", rootFile]).status == 0)
        #expect(
            try Certificate(pemEncoded: try String(contentsOfFile: rootFile, encoding: .utf8))
                == Certificate(pemEncoded: try String(contentsOfFile: session.certificate, encoding: .utf8)))

        let chain = try await session.run(["certificate", "chain", session.address])
        #expect(chain.stdout.components(separatedBy: "BEGIN CERTIFICATE").count == 3)
        let intermediate = try await session.run(["certificate", "intermediate", session.address])
        #expect(chain.stdout.hasPrefix(intermediate.stdout), "the chain starts with the intermediate")
        let check = try await session.run(["check", session.address, "--timeout", "5"])
        #expect(check.status == 0 && check.stdout.hasPrefix("3:"))
        #expect(try await ProcessRunner.run(Self.cli, ["version"]).stdout.contains("marblerun-swift CLI"))

        // Recovery: the sealing key is lost; two holders post their secrets with the CLI.
        #expect(await coordinator.stop() == 0)
        try FileManager.default.removeItem(
            at: coordinator.sealDirectory.appendingPathComponent("simulation-sealing-key.INSECURE"))
        try await coordinator.start()
        let encrypted =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: recoveryFile)))
            as? [String: String] ?? [:]
        #expect(encrypted.keys.sorted() == ["alice", "bob", "carol"])
        for (index, holder) in [holders[0], holders[2]].enumerated() {
            let secretFile = try session.file("\(holder.name).secret", encrypted[holder.name] ?? "")
            let keyFile = try session.file("\(holder.name).pem", holder.privateKeyPEM)
            let recovered = try await session.run(
                ["recover", secretFile, session.address, "-k", keyFile, "--era-config", era] + simulation)
            #expect(recovered.status == 0, "\(recovered.stderr)")
            #expect(recovered.stdout.contains(index == 0 ? "Remaining secrets: 1" : "Recovery successful"))
        }
        // Back with the same root: the pinned certificate works again.
        let deadline = ContinuousClock.now + .seconds(30)
        var running = try await session.run(["status", session.address])
        while ContinuousClock.now < deadline, !running.stdout.hasPrefix("3:") {
            try await Task.sleep(for: .milliseconds(200))
            running = try await session.run(["status", session.address])
        }
        #expect(running.stdout.hasPrefix("3:"), "\(running.stdout)\(running.stderr)")
        #expect(await coordinator.stop() == 0)
    }

    /// The Coordinator's collateral from a PCCS that an `sgx_default_qcnl.conf` names (here the
    /// simulated platform's collateral, served by the local PCCS), and a clear message when the
    /// service cannot be reached.
    @Test func theCLIFetchesCollateralFromThePCCSAQCNLFileNames() async throws {
        let coordinator = try CoordinatorProcess()
        try await coordinator.start()
        let session = Session(coordinator: coordinator)
        let pccs = try LocalPCCS(folder: coordinator.simulationDirectory.appendingPathComponent("collateral"))
        let client = try pccs.client()
        defer { _ = client.shutdown() }
        let uniqueID = Hex.encode(try SimulatedEnclave.uniqueID(of: CoordinatorProcess.binary))
        let era = try session.file("era.json", #"{"coordinator": {"UniqueID": "\#(uniqueID)", "Debug": false}}"#)
        let qcnl = try session.file(
            "sgx_default_qcnl.conf",
            """
            {
              // a PCCS with a self-signed certificate
              "pccs_url": "\(pccs.baseURL)/sgx/certification/v4/",
              "use_secure_cert": false,
            }
            """)
        let simulation = ["--simulation", coordinator.simulationDirectory.path]
        let status = try await session.run(
            ["status", session.address, "--era-config", era, "--qcnl-config", qcnl] + simulation)
        #expect(status.status == 0 && status.stdout.hasPrefix("2:"), "\(status.stdout)\(status.stderr)")
        #expect(try await pccs.stats(client)["/sgx/certification/v4/tcb"] == 1, "the collateral came from the PCCS")

        let down = try session.file("down.conf", #"{"pccs_url": "https://127.0.0.1:1/", "use_secure_cert": false}"#)
        let refused = try await ProcessRunner.run(
            Self.cli,
            ["status", session.address, "--era-config", era, "--qcnl-config", down] + simulation
                + ["--coordinator-cert", coordinator.directory.appendingPathComponent("other.pem").path])
        #expect(refused.status != 0 && refused.stderr.contains("reachable collateral service"), "\(refused.stderr)")
        #expect(await coordinator.stop() == 0)
    }
}

/// Roles, package and full updates, and the update log through the CLI, with marbles activated
/// over gRPC to show what a package update changes.
@Suite struct CLIUpdateTests {
    typealias Session = CLIAgainstCoordinatorTests.Session

    @Test func rolesUpdatesAndTheLogThroughTheCLI() async throws {
        let coordinator = try CoordinatorProcess()
        // Marbles reach the mesh API by IP: the root must name it.
        try await coordinator.start(extraArguments: ["--dns-names", "localhost,127.0.0.1"])
        let session = Session(coordinator: coordinator)
        let platform = try SimulatedPlatform.load(from: coordinator.simulationDirectory)
        let uniqueID = Hex.encode(try SimulatedEnclave.uniqueID(of: CoordinatorProcess.binary))
        let era = try session.file("era.json", #"{"UniqueID": "\#(uniqueID)"}"#)
        let pinned = try await session.run(
            ["status", session.address, "--era-config", era, "--simulation", coordinator.simulationDirectory.path])
        try #require(pinned.status == 0, "\(pinned.stderr)")

        let users = try ["admin", "reader", "writer", "updater1", "updater2", "stranger"].map { try TestUser(name: $0) }
        var identity: [String: [String]] = [:]
        for user in users {
            identity[user.name] = [
                "-c", try session.file("\(user.name).crt", user.certificatePEM),
                "-k", try session.file("\(user.name).key", user.keyPEM),
            ]
        }
        let enclave = ActivationManifest.enclave(on: platform)
        func manifest(_ greeting: String) throws -> String {
            let bytes = UserManifest.bytes(
                signerID: enclave.signerID, admin: users[0], reader: users[1], writer: users[2],
                updaters: Array(users[3...4]), updateThreshold: 2, greeting: greeting)
            return try session.file("manifest-\(greeting).json", String(decoding: bytes, as: UTF8.self))
        }
        let version1 = try manifest("v1")
        #expect(try await session.run(["manifest", "set", version1, session.address]).status == 0)
        func logCount() async throws -> Int {
            let log = try await session.run(["manifest", "log", session.address, "--verify"])
            #expect(log.status == 0, "\(log.stderr)")
            return log.stdout.split(separator: "\n").count
        }

        // Each role × command: exactly the allowed calls succeed; refusals name their HTTP status
        // and change nothing.
        let key = Data(repeating: 7, count: 16).base64EncodedString()
        let secrets = try session.file("secrets.json", #"{"userKey": {"Key": "\#(key)"}}"#)
        let certificateOwner = try TestUser(name: "service")
        let pem = try session.file("service.pem", certificateOwner.certificatePEM + certificateOwner.keyPEM)
        let raise = try session.file("raise.json", #"{"Packages": {"backend": {"SecurityVersion": 3}}}"#)
        let cases: [(command: [String], allowed: Set<String>)] = [
            (["secret", "get", "sharedKey", session.address], ["reader"]),
            (["secret", "set", secrets, session.address], ["admin", "writer"]),
            (["secret", "set", pem, session.address, "--from-pem", "userCert"], ["admin"]),
            (["manifest", "update", "apply", raise, session.address], ["admin"]),
        ]
        for (command, allowed) in cases {
            for user in ["stranger", "admin", "reader", "writer", "updater1"] {
                let before = try await logCount()
                let result = try await session.run(command + identity[user]!)
                let expected = allowed.contains(user)
                #expect((result.status == 0) == expected, "\(command) as \(user): \(result.stderr)")
                if !expected {
                    #expect(
                        result.stderr.contains(user == "stranger" ? "(HTTP 401)" : "(HTTP 403)"),
                        "\(command) as \(user): \(result.stderr)")
                    #expect(try await logCount() == before, "\(command) as \(user) changed the log")
                }
            }
        }
        // The certificate round-trips, and the raised SecurityVersion holds for marbles.
        let readCert = try await session.run(
            ["secret", "get", "userCert", session.address, "--json"] + identity["admin"]!)
        #expect(readCert.stdout.contains(Data(certificateOwner.certificateDER).base64EncodedString()))
        let root = try Array(
            Certificate(pemEncoded: String(contentsOfFile: session.certificate, encoding: .utf8)).serializeAsPEM()
                .derBytes)
        let marble = try TestMarble()
        await CoordinatorBinaryTests.expectRefusal(.permissionDenied, "SecurityVersion 2 after the update") {
            try await CoordinatorBinaryTests.activate(
                coordinator, root: root, marble: marble, quote: try marble.quote(platform, enclave: enclave),
                type: "backend")
        }
        var newer = enclave
        newer.securityVersion = 3
        _ = try await CoordinatorBinaryTests.activate(
            coordinator, root: root, marble: marble, quote: try marble.quote(platform, enclave: newer), type: "backend")
        let downgrade = try session.file("downgrade.json", #"{"Packages": {"backend": {"SecurityVersion": 2}}}"#)
        let refused = try await session.run(
            ["manifest", "update", "apply", downgrade, session.address] + identity["admin"]!)
        #expect(refused.status != 0 && refused.stderr.contains("downgrade"), "\(refused.stderr)")

        // A full update: 2 of 3 updaters; other bytes are no acknowledgement; then a cancel.
        let version2 = try manifest("v2")
        let proposed = try await session.run(
            ["manifest", "update", "apply", version2, session.address] + identity["admin"]!)
        #expect(proposed.stdout.contains("1 more acknowledgement"), "\(proposed.stdout)\(proposed.stderr)")
        let pendingManifest = try await session.run(["manifest", "update", "get", session.address])
        #expect(pendingManifest.stdoutData == (try Data(contentsOf: URL(fileURLWithPath: version2))))
        let missing = try await session.run(["manifest", "update", "get", session.address, "--missing"])
        #expect(missing.stdout.contains("1 user still needs"), "\(missing.stdout)")
        let otherBytes = try session.file(
            "v2-reformatted.json", String(contentsOfFile: version2, encoding: .utf8) + "\n")
        let notAnAck = try await session.run(
            ["manifest", "update", "acknowledge", otherBytes, session.address] + identity["updater1"]!)
        #expect(notAnAck.status != 0 && notAnAck.stderr.contains("not the pending manifest"), "\(notAnAck.stderr)")
        // Only updaters may acknowledge or cancel; the others are refused and change nothing.
        for user in ["stranger", "reader", "writer"] {
            let before = try await logCount()
            for command in [["acknowledge", version2], ["cancel"]] {
                let refused = try await session.run(
                    ["manifest", "update"] + command + [session.address] + identity[user]!)
                let status = user == "stranger" ? "(HTTP 401)" : "(HTTP 403)"
                #expect(
                    refused.status != 0 && refused.stderr.contains(status), "\(command) as \(user): \(refused.stderr)")
            }
            #expect(try await logCount() == before)
        }
        let acknowledged = try await session.run(
            ["manifest", "update", "acknowledge", version2, session.address] + identity["updater1"]!)
        #expect(acknowledged.stdout.contains("Update applied"), "\(acknowledged.stdout)\(acknowledged.stderr)")
        #expect(try await session.run(["manifest", "verify", version2, session.address]).status == 0)

        let version3 = try manifest("v3")
        _ = try await session.run(["manifest", "update", "apply", version3, session.address] + identity["updater2"]!)
        let cancelled = try await session.run(["manifest", "update", "cancel", session.address] + identity["admin"]!)
        #expect(cancelled.status == 0 && cancelled.stdout.contains("cancelled"), "\(cancelled.stderr)")
        #expect(try await session.run(["manifest", "update", "get", session.address]).status != 0)
        #expect(try await session.run(["manifest", "verify", version2, session.address]).status == 0)

        // The saved log verifies offline; a changed line is named by its position.
        let logFile = coordinator.directory.appendingPathComponent("update.log").path
        #expect(try await session.run(["manifest", "log", session.address, "-o", logFile]).status == 0)
        let offline = try await session.run(["manifest", "log", "--file", logFile])
        #expect(offline.status == 0 && offline.stderr.contains("verified:"), "\(offline.stderr)")
        var lines = try String(contentsOfFile: logFile, encoding: .utf8).split(separator: "\n").map(String.init)
        lines[3] = lines[3].replacingOccurrences(of: "\"admin\"", with: "\"mallory\"")
        let tampered = try session.file("tampered.log", lines.joined(separator: "\n") + "\n")
        let detected = try await session.run(["manifest", "log", "--file", tampered])
        #expect(detected.status != 0 && detected.stderr.contains("line 4"), "\(detected.stderr)")
        #expect(await coordinator.stop() == 0)
    }
}
