import Attestation
import CoordinatorTesting
import Foundation
import JSONText
import Testing

/// `marblerun attest -o` and `marblerun verify-statement` through the real binaries: a statement
/// verifies offline at a pinned time, any changed part is refused by name, another Coordinator's
/// statement and expired collateral are refused.
@Suite struct ClusterStatementTests {
    static let cli = CLIAgainstCoordinatorTests.cli

    /// A Coordinator with a manifest and a package update, and its statement.
    struct Cluster {
        let coordinator: CoordinatorProcess
        let session: CLIAgainstCoordinatorTests.Session
        let era: String
        let manifestFile: String
        let statementFile: String
        var simulation: [String] { ["--simulation", coordinator.simulationDirectory.path] }

        static func start() async throws -> Cluster {
            let coordinator = try CoordinatorProcess()
            try await coordinator.start()
            let session = CLIAgainstCoordinatorTests.Session(coordinator: coordinator)
            let platform = try SimulatedPlatform.load(from: coordinator.simulationDirectory)
            let uniqueID = Hex.encode(try SimulatedEnclave.uniqueID(of: CoordinatorProcess.binary))
            let era = try session.file("era.json", #"{"coordinator": {"UniqueID": "\#(uniqueID)"}}"#)
            let simulation = ["--simulation", coordinator.simulationDirectory.path]
            let admin = try TestUser(name: "admin")
            let manifest = UserManifest.bytes(
                signerID: ActivationManifest.enclave(on: platform).signerID, admin: admin,
                reader: try TestUser(name: "reader"), writer: try TestUser(name: "writer"))
            let manifestFile = try session.file("manifest.json", String(decoding: manifest, as: UTF8.self))
            let set = try await session.run(
                ["manifest", "set", manifestFile, session.address, "--era-config", era] + simulation)
            #expect(set.status == 0, "\(set.stderr)")
            let update = try session.file("update.json", #"{"Packages": {"backend": {"SecurityVersion": 3}}}"#)
            let identity = [
                "-c", try session.file("admin.crt", admin.certificatePEM), "-k",
                try session.file("admin.key", admin.keyPEM),
            ]
            #expect(
                try await session.run(["manifest", "update", "apply", update, session.address] + identity).status == 0)
            let statementFile = coordinator.directory.appendingPathComponent("statement.json").path
            let attest = try await session.run(
                ["attest", session.address, "-o", statementFile, "--era-config", era] + simulation)
            #expect(
                attest.status == 0 && attest.stderr.contains("verified: the update log, 2 entries"), "\(attest.stderr)")
            return Cluster(
                coordinator: coordinator, session: session, era: era, manifestFile: manifestFile,
                statementFile: statementFile)
        }

        func verify(_ file: String, _ extra: [String] = []) async throws -> ProcessRunner.Result {
            try await ProcessRunner.run(cli, ["verify-statement", file, "--era-config", era] + simulation + extra)
        }
    }

    @Test func aStatementVerifiesOfflineAndEveryChangedPartIsNamed() async throws {
        let cluster = try await Cluster.start()
        // Offline: the Coordinator is gone before anything is checked.
        _ = await cluster.coordinator.stop()
        let statement = try JSONParser().parse(Array(try Data(contentsOf: URL(fileURLWithPath: cluster.statementFile))))
        let time = try #require(statement["time"]?.stringValue)

        let valid = try await cluster.verify(cluster.statementFile, ["--at", time, "--manifest", cluster.manifestFile])
        #expect(valid.status == 0, "\(valid.stderr)")
        #expect(valid.stdout.contains("verified: the manifest is exactly \(cluster.manifestFile)"), "\(valid.stdout)")
        #expect(valid.stdout.contains("statement's time \(time)"), "\(valid.stdout)")
        let json = try await cluster.verify(cluster.statementFile, ["--at", time, "--json"])
        let proof = try JSONParser().parse(Array(json.stdoutData))
        #expect(proof["logEntries"] == .number("2") && proof["tcbStatus"]?.stringValue == "UpToDate", "\(json.stdout)")

        // Another manifest file: refused, naming the manifest.
        let other = try cluster.session.file("other.json", #"{"Packages": {}, "Marbles": {}}"#)
        let wrongManifest = try await cluster.verify(cluster.statementFile, ["--at", time, "--manifest", other])
        #expect(
            wrongManifest.status != 0 && wrongManifest.stderr.contains("verify: manifest:"), "\(wrongManifest.stderr)")

        // One changed byte in each part.
        func base64Flipped(_ text: String, at position: (Int) -> Int) -> String {
            var bytes = Array(Data(base64Encoded: text) ?? Data())
            let index = position(bytes.count)
            bytes[index] ^= 0x01
            return Data(bytes).base64EncodedString()
        }
        func textFlipped(_ text: String, at fraction: Double) -> String {
            var characters = Array(text)
            var index = Int(Double(characters.count) * fraction)
            while !(characters[index].isLetter || characters[index].isNumber) { index += 1 }
            characters[index] =
                characters[index] == "A"
                ? "B" : (characters[index].isNumber ? (characters[index] == "1" ? "2" : "1") : "A")
            return String(characters)
        }
        guard case .object(let members) = statement else { throw TestFailure("the statement is not an object") }
        func changed(_ key: String, _ change: (JSONValue) -> JSONValue) -> JSONValue {
            .object(members.map { $0.key == key ? JSONMember(key, change($0.value)) : $0 })
        }
        let collateral = try #require(statement["collateral"])
        let cases: [(String, JSONValue, String)] = [
            ("quote", changed("quote") { .string(base64Flipped($0.stringValue ?? "") { $0 / 3 }) }, "verify: quote:"),
            (
                "certificateChain", changed("certificateChain") { .string(textFlipped($0.stringValue ?? "", at: 0.8)) },
                "verify: certificateChain:"
            ),
            (
                "collateral",
                changed("collateral") { _ in
                    .object(
                        (collateral.objectValue ?? []).map {
                            $0.key == "tcb_info"
                                ? JSONMember($0.key, .string(textFlipped($0.value.stringValue ?? "", at: 0.5))) : $0
                        })
                }, "verify: collateral:"
            ),
            (
                "manifest", changed("manifest") { .string(base64Flipped($0.stringValue ?? "") { $0 / 2 }) },
                "verify: manifest:"
            ),
            (
                "manifestSignature",
                changed("manifestSignature") { .string(base64Flipped($0.stringValue ?? "") { $0 - 2 }) },
                "verify: manifestSignature:"
            ),
            (
                "updateLog",
                changed("updateLog") { value in
                    .array(
                        (value.arrayValue ?? []).enumerated().map {
                            $0.offset == 1 ? .string(textFlipped($0.element.stringValue ?? "", at: 0.3)) : $0.element
                        })
                }, "verify: updateLog:"
            ),
            // A later second still parses: the quote's nonce no longer matches.
            (
                "time", changed("time") { _ in .string(textFlipped(time, at: 0.9)) },
                "verify: time: the quote does not bind"
            ),
            ("time-text", changed("time") { _ in .string(time + "x") }, "verify: time:"),
            ("salt", changed("salt") { .string(base64Flipped($0.stringValue ?? "") { _ in 0 }) }, "salt"),
            ("version", changed("version") { _ in .number("2") }, "verify: statement:"),
        ]
        for (part, value, expected) in cases {
            let file = cluster.coordinator.directory.appendingPathComponent("changed-\(part).json")
            try Data(value.serialized()).write(to: file)
            let result = try await cluster.verify(file.path, ["--at", time])
            #expect(result.status != 0 && result.stderr.contains(expected), "\(part): \(result.stderr)")
        }
        // Truncated: not JSON, named as the statement.
        let truncated = cluster.coordinator.directory.appendingPathComponent("truncated.json")
        try Data(statement.serialized().prefix(500)).write(to: truncated)
        let cut = try await cluster.verify(truncated.path, ["--at", time])
        #expect(cut.status != 0 && cut.stderr.contains("verify: statement:"), "\(cut.stderr)")

        // Collateral expired at --at (it is valid for a year): refused, naming the collateral.
        let expired = try await cluster.verify(cluster.statementFile, ["--at", "2036-01-01T00:00:00Z"])
        #expect(expired.status != 0 && expired.stderr.contains("verify: collateral:"), "\(expired.stderr)")
        #expect(expired.stderr.contains("expired") || expired.stderr.contains("valid"), "\(expired.stderr)")
    }

    @Test func anotherCoordinatorsStatementDoesNotPass() async throws {
        let ours = try await Cluster.start()
        let theirs = try await Cluster.start()
        _ = await ours.coordinator.stop()
        _ = await theirs.coordinator.stop()
        // Their statement verifies with their platform, not with ours (the same binary, so the
        // same UniqueID: the platform's root is what tells them apart).
        #expect(try await theirs.verify(theirs.statementFile).status == 0)
        let refused = try await ours.verify(theirs.statementFile)
        #expect(refused.status != 0 && refused.stderr.contains("the statement does not verify"), "\(refused.stderr)")
        // Their manifest is not ours either.
        let mixed = try await theirs.verify(theirs.statementFile, ["--manifest", ours.manifestFile])
        #expect(mixed.status != 0, "\(mixed.stderr)")
    }
}
