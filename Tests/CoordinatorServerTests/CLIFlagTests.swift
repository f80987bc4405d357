import Attestation
import CoordinatorTesting
import Crypto
import Foundation
import JSONText
import Testing
import X509

/// MarbleRun's remaining CLI flags through the real binaries: `--accepted-advisories`,
/// `--save-sgx-quote`, `manifest get -s/-u`, `--keep-cert`.
@Suite struct CLIFlagTests {
    @Test func advisoriesSavedQuoteSignatureAndUpdatesMerged() async throws {
        let coordinator = try CoordinatorProcess()
        // A platform whose TCB needs software hardening against two advisories.
        var configuration = SimulatedPlatform.Configuration()
        configuration.tcbLevels = [
            TCBInfo.Level(
                sgxComponents: configuration.tcbComponents, tdxComponents: nil, pceSVN: configuration.pceSVN,
                status: .swHardeningNeeded, advisoryIDs: ["INTEL-SA-00334", "INTEL-SA-00615"])
        ]
        let platform = try SimulatedPlatform.generate(configuration: configuration)
        try platform.write(to: coordinator.simulationDirectory)
        try await coordinator.start()
        let session = CLIAgainstCoordinatorTests.Session(coordinator: coordinator)
        let simulation = ["--simulation", coordinator.simulationDirectory.path]
        let uniqueID = Hex.encode(try SimulatedEnclave.uniqueID(of: CoordinatorProcess.binary))
        let era = try session.file(
            "era.json",
            #"{"coordinator": {"UniqueID": "\#(uniqueID)", "AcceptedTCBStatuses": ["SWHardeningNeeded"], "AcceptedAdvisories": ["INTEL-SA-00334"]}}"#
        )
        let quoteFile = coordinator.directory.appendingPathComponent("coordinator.quote").path

        // The era config accepts one of the two advisories: refused, naming the other.
        let refused = try await session.run(
            ["status", session.address, "--era-config", era, "--save-sgx-quote", quoteFile] + simulation)
        #expect(refused.status != 0 && refused.stderr.contains("INTEL-SA-00615"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: quoteFile), "a quote that did not pass is not saved")
        // The flag replaces the era config's list.
        let accepted = try await session.run(
            [
                "status", session.address, "--era-config", era, "--accepted-advisories",
                "INTEL-SA-00334, INTEL-SA-00615", "--save-sgx-quote", quoteFile,
            ] + simulation)
        #expect(accepted.status == 0, "\(accepted.stderr)")
        let saved = try Quote(parsing: Array(try Data(contentsOf: URL(fileURLWithPath: quoteFile))))
        let verified = try platform.verifier.verify(saved, collateral: platform.collateral, at: Date())
        #expect(verified.tcbStatus == .swHardeningNeeded)
        #expect(Hex.encode(verified.uniqueID) == uniqueID)
        let unverified = try await session.run(["status", session.address, "-i", "--save-sgx-quote", quoteFile])
        #expect(unverified.status != 0 && unverified.stderr.contains("--era-config"), "\(unverified.stderr)")

        // A manifest, then a package update recorded in the log.
        let admin = try TestUser(name: "admin")
        let identity = [
            "-c", try session.file("admin.crt", admin.certificatePEM), "-k",
            try session.file("admin.key", admin.keyPEM),
        ]
        let manifest = UserManifest.bytes(
            signerID: ActivationManifest.enclave(on: platform).signerID, admin: admin, reader: try TestUser(name: "r"),
            writer: try TestUser(name: "w"), recoveryKeys: [], recoveryThreshold: 0)
        let manifestFile = try session.file("manifest.json", String(decoding: manifest, as: UTF8.self))
        #expect(try await session.run(["manifest", "set", manifestFile, session.address]).status == 0)
        let plain = try await session.run(["manifest", "get", session.address])
        #expect(plain.status == 0 && Array(plain.stdoutData) == manifest, "\(plain.stderr)")

        // -s: the fingerprint and the root's signature around the manifest.
        let signed = try await session.run(["manifest", "get", session.address, "-s"])
        #expect(signed.status == 0, "\(signed.stderr)")
        let wrapper = try JSONParser().parse(Array(signed.stdoutData))
        #expect(wrapper["ManifestSignature"]?.stringValue == Hex.encode(SHA256.hash(data: manifest)))
        #expect(wrapper["Manifest"] == (try JSONParser().parse(manifest)))
        let root = try Certificate(
            pemEncoded: String(contentsOfFile: session.certificate, encoding: .utf8))
        let signature = try #require(
            wrapper["ManifestSignatureRootECDSA"]?.stringValue.flatMap { Data(base64Encoded: $0) })
        let rootKey = try #require(P256.Signing.PublicKey(root.publicKey))
        #expect(
            rootKey.isValidSignature(
                try P256.Signing.ECDSASignature(derRepresentation: signature), for: SHA256.hash(data: manifest)))

        // -u: the package update from the verified log applied; nothing else changes.
        let before = try await session.run(["manifest", "get", session.address, "-u"])
        #expect(before.status == 0 && Array(before.stdoutData) == manifest, "no update yet: the manifest as set")
        let update = try session.file("update.json", #"{"Packages": {"backend": {"SecurityVersion": 3}}}"#)
        #expect(try await session.run(["manifest", "update", "apply", update, session.address] + identity).status == 0)
        let merged = try await session.run(["manifest", "get", session.address, "--display-update"])
        #expect(merged.status == 0, "\(merged.stderr)")
        // The manifest as set with backend's SecurityVersion 3, compared in canonical form (the
        // merged manifest is printed with sorted keys, as MarbleRun's CLI marshals it).
        guard case .object(var members) = try JSONParser().parse(manifest),
            let packages = members.firstIndex(where: { $0.key == "Packages" }),
            case .object(var entries) = members[packages].value,
            let backend = entries.firstIndex(where: { $0.key == "backend" }),
            case .object(var fields) = entries[backend].value
        else { throw TestFailure("the test manifest has no Packages.backend") }
        fields.removeAll { $0.key == "SecurityVersion" }
        fields.append(JSONMember("SecurityVersion", .number("3")))
        entries[backend].value = .object(fields)
        members[packages].value = .object(entries)
        let mergedValue = try JSONParser().parse(Array(merged.stdoutData))
        #expect(mergedValue["Packages"]?["backend"]?["SecurityVersion"] == .number("3"))
        #expect(mergedValue.serialized() == JSONValue.object(members).serialized())

        // --keep-cert needs a verified Coordinator; -u needs the log's signatures checked.
        let keep = try await session.run(["manifest", "verify", manifestFile, session.address, "--keep-cert"])
        #expect(keep.status == 0, "\(keep.stderr)")
        let keepInsecure = try await session.run(["manifest", "get", session.address, "--keep-cert", "-i"])
        #expect(keepInsecure.status != 0 && keepInsecure.stderr.contains("--keep-cert"), "\(keepInsecure.stderr)")
        let mergeInsecure = try await session.run(["manifest", "get", session.address, "-u", "-i"])
        #expect(mergeInsecure.status != 0 && mergeInsecure.stderr.contains("-i"), "\(mergeInsecure.stderr)")
        _ = await coordinator.stop()
    }
}
