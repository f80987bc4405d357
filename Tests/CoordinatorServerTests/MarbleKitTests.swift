import Attestation
import CoordinatorTesting
import Foundation
import MarbleKit
import Synchronization
import Testing
import X509

/// MarbleKit against the real Coordinator binary: activation with a verified Coordinator, the
/// UUID kept across restarts, a wrong root refused, an unreachable Coordinator retried, a refusal
/// reported at once.
@Suite struct MarbleKitTests {
    /// A Coordinator (its root names 127.0.0.1) with ActivationManifest set (MaxActivations 3):
    /// its platform, the manifest's enclave and its root (PEM).
    static func coordinatorWithManifest() async throws -> (
        coordinator: CoordinatorProcess, platform: SimulatedPlatform, enclave: SimulatedEnclave, root: String
    ) {
        let coordinator = try CoordinatorProcess()
        try await coordinator.start(extraArguments: ["--dns-names", "localhost,127.0.0.1"])
        let platform = try SimulatedPlatform.load(from: coordinator.simulationDirectory)
        let enclave = ActivationManifest.enclave(on: platform)
        let manifest = ActivationManifest.bytes(signerID: enclave.signerID, maxActivations: 3)
        let set = try await coordinator.request(
            "POST", "/api/v2/manifest", body: #"{"manifest":"\#(Data(manifest).base64EncodedString())"}"#)
        try #require(set.status == 200)
        let root = try await RecoveryAPITests.root(coordinator).serializeAsPEM().pemString
        return (coordinator, platform, enclave, root)
    }

    /// On Kubernetes the UUID file is the pod's UID in a read-only downward-API volume: the
    /// marble uses it and leaves it as it is (the tests run as root, who may write anyway, so the
    /// file's bytes and mode show whether it was rewritten).
    @Test func aUUIDFileGivenByThePlatformIsReadNeverWritten() async throws {
        let (coordinator, platform, enclave, root) = try await Self.coordinatorWithManifest()
        let directory = coordinator.directory.appendingPathComponent("downward-api")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let uuidFile = directory.appendingPathComponent("uuid-file")
        let podUID = Data("7C9E6679-7425-40DE-944B-E07FC1F90AE7\n".utf8)
        try podUID.write(to: uuidFile)
        try FileManager.default.setAttributes([.posixPermissions: 0o444], ofItemAtPath: uuidFile.path)
        let configuration = MarbleConfiguration(
            marbleType: "backend", coordinatorAddress: "localhost:\(coordinator.meshPort)", uuidFile: uuidFile,
            dnsNames: ["backend.local"], coordinatorRoot: root)
        let activated = try await Marble.activate(
            configuration, quoteIssuer: SimulatedQuoteIssuer(platform: platform, enclave: enclave))
        #expect(activated.uuid == UUID(uuidString: "7c9e6679-7425-40de-944b-e07fc1f90ae7"))
        #expect(try Data(contentsOf: uuidFile) == podUID, "the pod's UUID file was rewritten")
        let permissions =
            try FileManager.default.attributesOfItem(atPath: uuidFile.path)[.posixPermissions] as? NSNumber
        #expect(permissions?.intValue == 0o444)
    }

    @Test func aMarbleActivatesKeepsItsUUIDAndTrustsOnlyItsCoordinator() async throws {
        let (coordinator, platform, enclave, root) = try await Self.coordinatorWithManifest()
        let uuidFile = coordinator.directory.appendingPathComponent("marble/uuid")
        let configuration = MarbleConfiguration(
            marbleType: "backend", coordinatorAddress: "localhost:\(coordinator.meshPort)", uuidFile: uuidFile,
            dnsNames: ["backend.local", "127.0.0.1"], coordinatorRoot: root)
        let issuer = SimulatedQuoteIssuer(platform: platform, enclave: enclave)

        let first = try await Marble.activate(configuration, quoteIssuer: issuer)
        #expect(first.argv == ["backend", "--serve"])
        #expect(first.env["GREETING"] == Array("hi".utf8))
        let stored = try String(contentsOf: uuidFile, encoding: .utf8)
        #expect(stored == first.uuid.uuidString.lowercased())
        let permissions =
            try FileManager.default.attributesOfItem(atPath: uuidFile.path)[.posixPermissions] as? NSNumber
        #expect(permissions?.intValue == 0o600)
        let chain = String(decoding: first.env["MARBLE_PREDEFINED_MARBLE_CERTIFICATE_CHAIN"] ?? [], as: UTF8.self)
        let leaf = try Certificate(
            pemEncoded: String(chain[..<chain.range(of: "-----END CERTIFICATE-----")!.upperBound]))
        #expect(leaf.subject.description.contains(first.uuid.uuidString.lowercased()))
        #expect(String(describing: try leaf.extensions.subjectAlternativeNames).contains("backend.local"))

        // The restarted marble (same UUID file) is reactivated with the same UUID-bound keys.
        let again = try await Marble.activate(configuration, quoteIssuer: issuer)
        #expect(again.uuid == first.uuid && again.env["OWN_KEY"] == first.env["OWN_KEY"])

        // The Coordinator dialled by IP address (its root names 127.0.0.1): the same marble again.
        var byAddress = configuration
        byAddress.coordinatorAddress = "127.0.0.1:\(coordinator.meshPort)"
        let viaIP = try await Marble.activate(byAddress, quoteIssuer: issuer)
        #expect(viaIP.uuid == first.uuid)

        // MaxActivations is 3 and every activation counted: neither a new marble nor the old UUID gets a fourth.
        // (uuidFileGivenByThePlatformIsReadNeverWritten covers a UUID file the marble may not write.)
        var fresh = configuration
        fresh.uuidFile = coordinator.directory.appendingPathComponent("other/uuid")
        await #expect {
            _ = try await Marble.activate(fresh, quoteIssuer: issuer)
        } throws: { ($0 as? MarbleError)?.code == .refused }
        #expect(!FileManager.default.fileExists(atPath: fresh.uuidFile.path), "a refused marble stores no UUID")
        await #expect {
            _ = try await Marble.activate(configuration, quoteIssuer: issuer)
        } throws: { ($0 as? MarbleError)?.code == .refused }

        // The issued certificate gives ready TLS configurations: trust is the cluster's marble root.
        let tls = try first.tls()
        #expect(tls.certificateChain.count == 2 && tls.trustRoots.count == 1)
        #expect(tls.serverConfiguration().certificateVerification == .noHostnameVerification)
        #expect(tls.serverConfiguration(requireClientCertificate: false).certificateVerification == .none)
        #expect(tls.clientConfiguration().certificateVerification == .fullVerification)
        #expect(tls.clientConfiguration().minimumTLSVersion == .tlsv12)

        // Another root: the Coordinator is not trusted, nothing is sent, and retrying does not help.
        var impostor = configuration
        impostor.coordinatorRoot = try TestCertificates.ecdsa(commonName: "MarbleRun Coordinator")
        await #expect {
            _ = try await Marble.activate(impostor, quoteIssuer: issuer, timeout: .seconds(30))
        } throws: { error in
            let error = error as? MarbleError
            return error?.code == .untrusted && error?.message.contains("does not chain to the configured root") == true
        }
        #expect(await coordinator.stop() == 0)

        // The Coordinator is down: attempts are reported, then a clear error after the timeout.
        let lines = LineRecorder()
        await #expect {
            _ = try await Marble.activate(configuration, quoteIssuer: issuer, timeout: .seconds(5)) { lines.add($0) }
        } throws: { ($0 as? MarbleError)?.code == .unreachable }
        // At least one attempt is reported: on a loaded machine (the whole suite at once) a second
        // attempt may not fit before the deadline.
        #expect(lines.count >= 1)
    }
}

/// MarbleTLS from what a program finds in its environment: missing or malformed values are typed errors.
@Suite struct MarbleTLSTests {
    @Test func refusesMissingOrMalformedCredentials() throws {
        #expect(throws: MarbleError(.configuration, "")) { try MarbleTLS(environment: [:]) }
        let root = try TestCertificates.ecdsa(commonName: "root")
        let environment = [
            "MARBLE_PREDEFINED_MARBLE_CERTIFICATE_CHAIN": root, "MARBLE_PREDEFINED_PRIVATE_KEY": "not a key",
            "MARBLE_PREDEFINED_ROOT_CA": root,
        ]
        #expect {
            try MarbleTLS(environment: environment)
        } throws: { error in
            let error = error as? MarbleError
            return error?.code == .configuration && error?.message.contains("not valid PEM") == true
        }
        for name in environment.keys {
            var missing = environment
            missing[name] = ""
            #expect {
                try MarbleTLS(environment: missing)
            } throws: { ($0 as? MarbleError)?.message.contains(name) == true }
        }
        let truncated = String(root.prefix(root.count / 2))
        #expect(throws: MarbleError(.configuration, "")) {
            try MarbleTLS(certificateChainPEM: truncated, privateKeyPEM: "", trustRootsPEM: root)
        }
    }

    /// A new user's first run: a Coordinator with its default names (localhost) and a marble
    /// dialling 127.0.0.1 with the pinned root. The pinned root is the Coordinator's own
    /// certificate, so it is trusted exactly, without a hostname; a server with another
    /// certificate at that address ends the marble at once with what to check.
    @Test func aMarbleDiallingTheCoordinatorByIPTrustsThePinnedRootWithoutAHostname() async throws {
        let coordinator = try CoordinatorProcess()
        try await coordinator.start()
        let platform = try SimulatedPlatform.load(from: coordinator.simulationDirectory)
        let enclave = ActivationManifest.enclave(on: platform)
        try await coordinator.setManifest(ActivationManifest.bytes(signerID: enclave.signerID, maxActivations: 0))
        let root = try await RecoveryAPITests.root(coordinator)
        #expect(try root.extensions.subjectAlternativeNames.map(Array.init) == [.dnsName("localhost")])
        let configuration = MarbleConfiguration(
            marbleType: "backend", coordinatorAddress: "127.0.0.1:\(coordinator.meshPort)",
            uuidFile: coordinator.directory.appendingPathComponent("ip/uuid"), dnsNames: ["backend"],
            coordinatorRoot: try root.serializeAsPEM().pemString)
        let issuer = SimulatedQuoteIssuer(platform: platform, enclave: enclave)
        let lines = LineRecorder()
        let activated = try await Marble.activate(configuration, quoteIssuer: issuer, timeout: .seconds(30)) {
            lines.add($0)
        }
        #expect(activated.argv == ["backend", "--serve"])
        #expect(lines.count == 0, "no retries: the first attempt is trusted")

        // Another certificate at that address (an impostor with the same names): refused at once.
        var impostor = configuration
        impostor.coordinatorRoot = try TestCertificates.ecdsa(commonName: "MarbleRun Coordinator")
        let start = ContinuousClock.now
        await #expect {
            _ = try await Marble.activate(impostor, quoteIssuer: issuer, timeout: .seconds(30))
        } throws: { error in
            let error = error as? MarbleError
            return error?.code == .untrusted && error?.message.contains("EDG_MARBLE_COORDINATOR_ADDR") == true
        }
        // Not retried until the 30 s timeout (the bound is loose: the whole suite loads the machine).
        #expect(ContinuousClock.now - start < .seconds(28), "a trust failure is not retried until the timeout")
        #expect(await coordinator.stop() == 0)
    }
}

/// Collects report lines from concurrent code.
final class LineRecorder: Sendable {
    private let lines = Mutex<[String]>([])
    func add(_ line: String) { lines.withLock { $0.append(line) } }
    var count: Int { lines.withLock { $0.count } }

}
