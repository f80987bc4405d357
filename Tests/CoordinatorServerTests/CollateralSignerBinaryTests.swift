import CoordinatorTesting
import Crypto
import Foundation
import GRPCCore
import SwiftASN1
import Testing
import X509

@testable import Attestation

/// Collateral from a PCCS (here: the simulated platform's collateral folder the binary reads)
/// is trusted only from Intel's TCB Signing certificate: a TCB Info signed by a platform's PCK
/// key, under a chain that does reach the root, refuses every marble over the wire.
@Suite struct CollateralSignerBinaryTests {
    @Test func tcbInfoSignedByAPCKKeyRefusesMarblesOverTheWire() async throws {
        let coordinator = try CoordinatorProcess()
        let platform = try SimulatedPlatform.generate()
        try platform.write(to: coordinator.simulationDirectory)
        let folder = coordinator.simulationDirectory.appendingPathComponent("collateral")
        // Every quote "UpToDate" under a TCB Info the PCK key signed: what a host with one
        // platform's PCK key could serve.
        let tcbInfo = platform.collateral.tcbInfo.bytes
        let signature = try platform.pckKey.signature(for: SHA256.hash(data: tcbInfo)).rawRepresentation
        let signed =
            Array(#"{"tcbInfo":"#.utf8) + tcbInfo
            + Array(#","signature":"\#(Hex.encode(Array(signature)).lowercased())"}"#.utf8)
        try Data(signed).write(to: folder.appendingPathComponent("tcbInfo.json"))
        let chain = try [platform.pckCertificate, platform.pckCACertificate, platform.rootCertificate]
            .map { try $0.serializeAsPEM().pemString + "\n" }.joined()
        try Data(chain.utf8).write(to: folder.appendingPathComponent("tcbSignChain.pem"))

        let enclave = ActivationManifest.enclave(on: platform)
        let manifestFile = coordinator.directory.appendingPathComponent("manifest.json")
        try Data(ActivationManifest.bytes(signerID: enclave.signerID)).write(to: manifestFile)
        try await coordinator.start(extraArguments: [
            "--startup-manifest", manifestFile.path, "--dns-names", "localhost,127.0.0.1",
        ])
        let root = try await RecoveryAPITests.root(coordinator)
        var serializer = DER.Serializer()
        try serializer.serialize(root)
        let marble = try TestMarble()
        do {
            _ = try await CoordinatorBinaryTests.activate(
                coordinator, root: serializer.serializedBytes, marble: marble,
                quote: try marble.quote(platform, enclave: enclave), type: "backend")
            Issue.record("a marble was activated under collateral a PCK key signed")
        } catch let error as RPCError {
            #expect(error.code == .permissionDenied, "\(error)")
            #expect(error.message.contains("TCB Signing") && error.message.contains("collateral-signer"), "\(error)")
        }
        #expect(coordinator.log().contains("Simulated SGX PCK Certificate"), "the log names the signer")
        #expect(await coordinator.stop() == 0)
    }
}
