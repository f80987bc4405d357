import AsyncHTTPClient
import Attestation
import CoordinatorTesting
import Foundation
import GRPCCore
import SwiftASN1
import Testing
import X509

/// An activation held at its collateral fetch (a PCCS that answers only when the test lets it)
/// while a package update raises the security version: the marble checked under the old policy
/// is told to retry (ABORTED) and nothing of it is counted; its retry is checked under the new one.
/// The Coordinator fetches collateral from the PCCS an `sgx_default_qcnl.conf` names.
@Suite struct ActivationEpochBinaryTests {
    @Test func aSecurityVersionRaiseDuringAnActivationAbortsItOverTheWire() async throws {
        let coordinator = try CoordinatorProcess()
        let platform = try SimulatedPlatform.generate()
        try platform.write(to: coordinator.simulationDirectory)
        let hold = coordinator.directory.appendingPathComponent("hold-tcb-info")
        try Data().write(to: hold)
        let pccs = try LocalPCCS(
            folder: coordinator.simulationDirectory.appendingPathComponent("collateral"), holdFile: hold)
        let client = try pccs.client()
        defer { _ = client.shutdown() }
        let qcnl = coordinator.directory.appendingPathComponent("sgx_default_qcnl.conf")
        try Data(
            """
            {
              // The local PCCS has a self-signed certificate; the collateral is verified anyway.
              "pccs_url": "\(pccs.baseURL)/sgx/certification/v4/",
              "use_secure_cert": false,
            }
            """.utf8
        ).write(to: qcnl)

        let admin = try TestUser(name: "admin")
        let manifestFile = coordinator.directory.appendingPathComponent("manifest.json")
        try Data(
            UserManifest.bytes(
                signerID: platform.defaultSigner.signerID, admin: admin, reader: try TestUser(name: "reader"),
                writer: try TestUser(name: "writer"), probeMaxActivations: 1)
        ).write(to: manifestFile)
        let identity = (
            cert: try CoordinatorBinaryTests.write(admin.certificatePEM, "admin.crt", in: coordinator.directory),
            key: try CoordinatorBinaryTests.write(admin.keyPEM, "admin.key", in: coordinator.directory)
        )
        try await coordinator.start(extraArguments: [
            "--startup-manifest", manifestFile.path, "--qcnl-config", qcnl.path,
            "--dns-names", "localhost,127.0.0.1",
        ])
        #expect(coordinator.log().contains("collateral service"), "the log says where collateral comes from")
        var serializer = DER.Serializer()
        try serializer.serialize(try await RecoveryAPITests.root(coordinator))
        let root = serializer.serializedBytes

        var enclave = ActivationManifest.enclave(on: platform)
        let marble = try TestMarble()
        let quote = try marble.quote(platform, enclave: enclave)
        let held = Task {
            try await CoordinatorBinaryTests.activate(
                coordinator, root: root, marble: marble, quote: quote, type: "probe")
        }
        // The activation has read the manifest and waits for its TCB Info.
        let deadline = ContinuousClock.now + .seconds(60)
        var asked = false
        for _ in 0..<600 where ContinuousClock.now < deadline {
            if (try? await pccs.stats(client))?["/sgx/certification/v4/tcb"] ?? 0 >= 1 {
                asked = true
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        try #require(asked, "the Coordinator never asked the PCCS for TCB Info")

        let raise = #"{"Packages":{"backend":{"SecurityVersion":3}}}"#
        let update = try await coordinator.request(
            "POST", "/api/v2/update", body: #"{"manifest":"\#(Data(raise.utf8).base64EncodedString())"}"#,
            identity: identity)
        #expect(update.status == 200, "\(update.json)")
        try FileManager.default.removeItem(at: hold)

        do {
            _ = try await held.value
            Issue.record("a marble checked under the replaced policy was activated")
        } catch let error as RPCError {
            #expect(error.code == .aborted, "\(error)")
            #expect(error.message.contains("retry"), "\(error)")
        }
        // Its retry meets the new policy; nothing was counted, so a marble at SVN 3 still gets
        // the one activation the type allows.
        do {
            _ = try await CoordinatorBinaryTests.activate(
                coordinator, root: root, marble: marble, quote: try marble.quote(platform, enclave: enclave),
                type: "probe")
            Issue.record("a marble below the raised security version was activated")
        } catch let error as RPCError {
            #expect(error.code == .permissionDenied, "\(error)")
        }
        enclave.securityVersion = 3
        let upgraded = try TestMarble()
        _ = try await CoordinatorBinaryTests.activate(
            coordinator, root: root, marble: upgraded, quote: try upgraded.quote(platform, enclave: enclave),
            type: "probe")
        #expect(await coordinator.stop() == 0)
    }
}
