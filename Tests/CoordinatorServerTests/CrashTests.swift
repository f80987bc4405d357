import Attestation
import AuditLog
import CoordinatorTesting
import Foundation
import MarbleKit
import Synchronization
import Testing
import X509

/// What a crash may and may not do: the Coordinator is SIGKILLed at random moments while
/// marbles activate and a user writes secrets. After every restart each acknowledged write is
/// there, nothing is half-applied (the signed log verifies and matches the state), and the
/// activation counts cover every acknowledged activation.
@Suite struct CrashTests {
    /// The users, their certificate files and the manifest of a crash test.
    struct Setup {
        let admin: TestUser
        let reader: TestUser
        let writer: TestUser
        let files: [String: (cert: String, key: String)]
        let manifest: [UInt8]

        init(_ coordinator: CoordinatorProcess, maxActivations: Int) throws {
            let platform = try SimulatedPlatform.load(from: coordinator.simulationDirectory)
            (admin, reader, writer) = (
                try TestUser(name: "admin"), try TestUser(name: "reader"), try TestUser(name: "writer")
            )
            var files: [String: (cert: String, key: String)] = [:]
            for user in [admin, reader, writer] {
                files[user.name] = (
                    try CoordinatorBinaryTests.write(
                        user.certificatePEM, "\(user.name).crt", in: coordinator.directory),
                    try CoordinatorBinaryTests.write(user.keyPEM, "\(user.name).key", in: coordinator.directory)
                )
            }
            self.files = files
            manifest = UserManifest.bytes(
                signerID: ActivationManifest.enclave(on: platform).signerID, admin: admin, reader: reader,
                writer: writer,
                maxActivations: maxActivations)
        }

        static func keyBody(_ value: UInt32) -> String {
            let bytes = withUnsafeBytes(of: value.bigEndian) { Array($0) } + Array(repeating: 0, count: 12)
            return #"{"secrets":{"userKey":{"Key":"\#(Data(bytes).base64EncodedString())"}}}"#
        }

        /// Sets the manifest and the user-defined secrets the marble's templates need.
        func configure(_ coordinator: CoordinatorProcess) async throws {
            let set = try await coordinator.request(
                "POST", "/api/v2/manifest", body: #"{"manifest":"\#(Data(manifest).base64EncodedString())"}"#)
            try #require(set.status == 200, "\(set.json)")
            let owner = try TestUser(name: "service")
            let pem = owner.certificatePEM.replacingOccurrences(of: "\n", with: "\\n")
            let body =
                #"{"secrets":{"userKey":{"Key":"AAAAAAAAAAAAAAAAAAAAAA=="},"userCert":{"Cert":"\#(pem)","Private":"\#(owner.key.derRepresentation.base64EncodedString())"}}}"#
            let secrets = try await coordinator.request(
                "POST", "/api/v2/secrets", body: body, identity: files["admin"])
            try #require(secrets.status == 200, "\(secrets.json)")
        }

        /// The value of userKey as the reader sees it (its first four bytes), nil if unreadable.
        func currentKey(_ coordinator: CoordinatorProcess) async throws -> UInt32? {
            let read = try await coordinator.request(
                "GET", "/api/v2/secrets?s=userKey", identity: files["reader"])
            guard let secrets = (read.json["data"] as? [String: Any])?["secrets"] as? [String: [String: Any]],
                let text = secrets["userKey"]?["Private"] as? String, let bytes = Data(base64Encoded: text),
                bytes.count >= 4
            else { return nil }
            return bytes.prefix(4).reduce(0) { $0 << 8 | UInt32($1) }
        }

        /// The update log, verified against the root the Coordinator serves; its secret writes in order.
        func verifiedLog(_ coordinator: CoordinatorProcess) async throws -> [String] {
            let root = try await RecoveryAPITests.root(coordinator)
            let answer = try await coordinator.request("GET", "/api/v2/update")
            let lines = try #require((answer.json["data"] as? [String: Any])?["updateLog"] as? [String])
            _ = try AuditLog.verify(lines.map { Array($0.utf8) }, root: root)
            return lines.filter { $0.contains(AuditEvent.secretsWritten) }
        }
    }

    /// What the load saw acknowledged.
    final class Acknowledged: Sendable {
        let activations = Mutex<[UUID]>([])
        let writes = Mutex<[UInt32]>([])
        let attemptedWrites = Mutex<[UInt32]>([])
        let attemptedActivations = Mutex(0)
    }

    static func activate(_ coordinator: CoordinatorProcess, uuid: UUID, root: String, type: String = "backend") async
        -> Bool
    {
        guard let platform = try? SimulatedPlatform.load(from: coordinator.simulationDirectory) else { return false }
        let file = coordinator.directory.appendingPathComponent("uuids/\(uuid.uuidString)")
        try? FileManager.default.createDirectory(
            at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? Data(uuid.uuidString.lowercased().utf8).write(to: file)
        let configuration = MarbleConfiguration(
            marbleType: type, coordinatorAddress: "localhost:\(coordinator.meshPort)", uuidFile: file,
            coordinatorRoot: root)
        let issuer = SimulatedQuoteIssuer(platform: platform, enclave: ActivationManifest.enclave(on: platform))
        return (try? await Marble.activate(configuration, quoteIssuer: issuer)) != nil
    }

    @Test func killNineDuringActivationsAndSecretWritesLosesNothingAcknowledged() async throws {
        let rounds = 50
        let activationsPerRound = 3
        var random = SeededRandom(state: UInt64.random(in: 1...UInt64.max))
        let seed = random.state
        let coordinator = try CoordinatorProcess()
        try await coordinator.start()
        let setup = try Setup(coordinator, maxActivations: rounds * activationsPerRound)
        try await setup.configure(coordinator)
        let root = try await RecoveryAPITests.root(coordinator).serializeAsPEM().pemString
        let acknowledged = Acknowledged()
        var value: UInt32 = 0

        for round in 0..<rounds {
            let delay = Int.random(in: 20...400, using: &random)
            let firstValue = value + 1
            value += 4
            let load = Task {
                await withTaskGroup(of: Void.self) { group in
                    for _ in 0..<activationsPerRound {
                        group.addTask {
                            let uuid = UUID()
                            if await Self.activate(coordinator, uuid: uuid, root: root) {
                                acknowledged.activations.withLock { $0.append(uuid) }
                            }
                        }
                    }
                    group.addTask {
                        for candidate in firstValue..<(firstValue + 4) {
                            acknowledged.attemptedWrites.withLock { $0.append(candidate) }
                            guard
                                let answer = try? await coordinator.request(
                                    "POST", "/api/v2/secrets", body: Setup.keyBody(candidate),
                                    identity: setup.files["writer"])
                            else { return }
                            if answer.status == 200 { acknowledged.writes.withLock { $0.append(candidate) } }
                        }
                    }
                }
            }
            try await Task.sleep(for: .milliseconds(delay))
            await coordinator.kill()
            await load.value
            // Restarted: start-up verifies the sealed state and the whole log, or refuses to run.
            do {
                try await coordinator.start()
            } catch {
                Issue.record(
                    "round \(round) (seed \(seed)): the Coordinator did not restart: \(coordinator.log().suffix(2000))")
                return
            }
            // The last acknowledged write, or one attempted after it whose answer the kill cut off.
            let writes = acknowledged.writes.withLock { $0 }
            let current = try await setup.currentKey(coordinator)
            if let last = writes.last {
                let attempted = acknowledged.attemptedWrites.withLock { $0 }
                let possible = attempted.filter { $0 >= last }
                #expect(
                    current.map(possible.contains) == true,
                    "round \(round) (seed \(seed)): userKey \(String(describing: current)), last acknowledged \(last)")
            }
        }

        // Every acknowledged secret write is in the signed log, in order, and the log verifies.
        let logged = try await setup.verifiedLog(coordinator)
        let writes = acknowledged.writes.withLock { $0 }
        #expect(logged.count >= writes.count + 1, "seed \(seed): \(logged.count) logged, \(writes.count) acknowledged")

        // Every acknowledged activation was counted: fill the remaining capacity, then the stored
        // count (limit − new) must cover them; each acknowledged UUID is still known (refused as
        // another marble type, where an unknown one is activated).
        let activations = acknowledged.activations.withLock { $0 }
        let limit = rounds * activationsPerRound
        var fresh = 0
        while fresh <= limit, await Self.activate(coordinator, uuid: UUID(), root: root) { fresh += 1 }
        #expect(
            limit - fresh >= activations.count,
            "seed \(seed): \(limit - fresh) counted, \(activations.count) acknowledged")
        // The load must have done something; on a loaded machine (a fuzzing campaign beside the
        // suite) fewer than half the rounds got a write acknowledged before their kill.
        #expect(
            !activations.isEmpty && writes.count >= rounds / 5,
            "seed \(seed): the load must have done something: \(activations.count) activations, \(writes.count) writes acknowledged"
        )
        #expect(
            await Self.activate(coordinator, uuid: UUID(), root: root, type: "probe"), "an unknown UUID is a new probe")
        for uuid in activations {
            let asProbe = await Self.activate(coordinator, uuid: uuid, root: root, type: "probe")
            #expect(!asProbe, "seed \(seed): acknowledged marble \(uuid) is unknown after the crashes")
        }
        #expect(await coordinator.stop() == 0)
    }
}
