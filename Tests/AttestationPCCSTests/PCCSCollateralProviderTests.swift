import AsyncHTTPClient
import Attestation
import AttestationPCCS
import Crypto
import Foundation
import CoordinatorTesting
import NIOSSL
import SwiftASN1
import Testing
import X509

/// The HTTPS collateral provider against a local PCCS stand-in (Tests/Support/pcs_server.py)
/// serving test data over TLS on 127.0.0.1.
@Suite struct PCCSCollateralProviderTests {
    final class LocalPCCS {
        let process = Process()
        let input = Pipe()
        let port: Int
        let rootCertificateDER: [UInt8]

        init(folder: URL) throws {
            let work = FileManager.default.temporaryDirectory.appendingPathComponent("pccs-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
            let key = P256.Signing.PrivateKey()
            let name = try DistinguishedName { CommonName("local PCCS") }
            let certificate = try Certificate(
                version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
                notValidBefore: Date().addingTimeInterval(-60),
                notValidAfter: Date().addingTimeInterval(3600), issuer: name, subject: name,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: Certificate.Extensions {
                    SubjectAlternativeNames([.ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))])
                },
                issuerPrivateKey: .init(key))
            let certPath = work.appendingPathComponent("cert.pem")
            let keyPath = work.appendingPathComponent("key.pem")
            try Data(certificate.serializeAsPEM().pemString.utf8).write(to: certPath)
            try Data(key.pemRepresentation.utf8).write(to: keyPath)
            rootCertificateDER = try certificate.serializeAsPEM().derBytes
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [
                "python3", TestData.packageRoot.appendingPathComponent("Tests/Support/pcs_server.py").path, folder.path,
                certPath.path,
                keyPath.path,
            ]
            let output = Pipe()
            process.standardOutput = output
            process.standardInput = input
            try process.run()
            var line = Data()
            while let byte = try output.fileHandleForReading.read(upToCount: 1), !byte.isEmpty, byte != Data("\n".utf8)
            {
                line.append(byte)
            }
            guard let port = Int(String(decoding: line, as: UTF8.self)) else {
                throw AttestationError(.policy, "the local PCCS did not start")
            }
            self.port = port
        }

        var baseURL: String { "https://127.0.0.1:\(port)" }

        func client() throws -> HTTPClient {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .certificates([try NIOSSLCertificate(bytes: rootCertificateDER, format: .der)])
            tls.minimumTLSVersion = .tlsv12
            return HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
        }

        func stats(_ client: HTTPClient) async throws -> [String: Int] {
            let response = try await client.execute(HTTPClientRequest(url: "\(baseURL)/_stats"), timeout: .seconds(10))
            let body = try await response.body.collect(upTo: 1 << 16)
            return try JSONDecoder().decode([String: Int].self, from: Data(body.readableBytesView))
        }

        deinit {
            try? input.fileHandleForWriting.close()
            process.waitUntilExit()
        }
    }

    final class Clock: @unchecked Sendable {
        private let lock = NSLock()
        private var value: Date
        init(_ value: Date) { self.value = value }
        var now: Date { lock.withLock { value } }
        func set(_ date: Date) { lock.withLock { value = date } }
    }

    @Test func fetchesVerifiableCollateralAndCachesItUntilNextUpdate() async throws {
        let now = Date()
        var configuration = SimulatedPlatform.Configuration()
        configuration.collateralValidity = 7 * 86_400
        let platform = try SimulatedPlatform.generate(configuration: configuration, now: now)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sim-\(UUID().uuidString)")
        try platform.write(to: directory)
        let pccs = try LocalPCCS(folder: directory.appendingPathComponent("collateral"))
        let client = try pccs.client()
        let clock = Clock(now)
        let provider = PCCSCollateralProvider(
            baseURL: pccs.baseURL + "/sgx/certification/v4/", client: client, now: { clock.now })
        let quote = try Quote(
            parsing: platform.quote(
                reportData: [5],
                enclave: SimulatedEnclave(
                    uniqueID: [UInt8](repeating: 9, count: 32), signerID: platform.defaultSigner.signerID)))

        let collateral = try await provider.collateral(for: quote)
        #expect(try platform.verifier.verify(quote, collateral: collateral, at: now).tcbStatus == .upToDate)
        _ = try await provider.collateral(for: quote)
        let afterTwo = try await pccs.stats(client)
        #expect(afterTwo["/sgx/certification/v4/tcb"] == 1)
        #expect(afterTwo["/sgx/certification/v4/qe/identity"] == 1)
        #expect(afterTwo["/sgx/certification/v4/pckcrl"] == 1)
        #expect(afterTwo["/sgx/certification/v4/rootcacrl"] == 1)

        clock.set(now.addingTimeInterval(8 * 86_400))
        _ = try await provider.collateral(for: quote)
        #expect(try await pccs.stats(client)["/sgx/certification/v4/tcb"] == 2)
        try await client.shutdown()
    }

    @Test func realQuoteCollateralComesBackWithTheExactSignedBytes() async throws {
        // Intel's collateral of the real SGX quote, laid out as a PCCS serves it.
        let bundle = try Collateral(dcapQVLBundle: TestData.bytes("dcap/dcap-qvl/sgx_quote_collateral.json"))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pcs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        func signed(_ member: String, _ bytes: [UInt8], _ signature: [UInt8]) -> Data {
            Data(
                Array("{\"\(member)\":".utf8) + bytes
                    + Array(",\"signature\":\"\(signature.map { String(format: "%02x", $0) }.joined())\"}".utf8))
        }
        try signed("tcbInfo", bundle.tcbInfo.bytes, bundle.tcbInfo.signature).write(
            to: folder.appendingPathComponent("tcbInfo.json"))
        try signed("enclaveIdentity", bundle.qeIdentity.bytes, bundle.qeIdentity.signature).write(
            to: folder.appendingPathComponent("qeIdentity.json"))
        try Data(bundle.rootCACRL.der).write(to: folder.appendingPathComponent("rootCaCrl.der"))
        try Data(bundle.pckCRL.der).write(to: folder.appendingPathComponent("intermediateCaCrl.der"))
        try Data(bundle.pckCRLIssuerChainPEM.utf8).write(to: folder.appendingPathComponent("pckSignChain.pem"))
        let tcbChain = try bundle.tcbInfoIssuerChain.map { try $0.serializeAsPEM().pemString + "\n" }.joined()
        try Data(tcbChain.utf8).write(to: folder.appendingPathComponent("tcbSignChain.pem"))

        let pccs = try LocalPCCS(folder: folder)
        let client = try pccs.client()
        let provider = PCCSCollateralProvider(
            baseURL: pccs.baseURL, client: client, now: { Date(timeIntervalSince1970: 1_751_328_000) })
        let quote = try Quote(parsing: TestData.bytes("dcap/dcap-qvl/sgx_quote"))
        let collateral = try await provider.collateral(for: quote)
        #expect(collateral.tcbInfo.bytes == bundle.tcbInfo.bytes)
        let verified = try QuoteVerifier().verify(
            quote, collateral: collateral, at: Date(timeIntervalSince1970: 1_751_328_000))
        #expect(verified.tcbStatus == .configurationAndSWHardeningNeeded)
        #expect(verified.advisoryIDs == ["INTEL-SA-00289", "INTEL-SA-00615"])
        try await client.shutdown()
    }

    @Test func serviceErrorsAreClear() async throws {
        let platform = try SimulatedPlatform.generate()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sim-\(UUID().uuidString)")
        try platform.write(to: directory)
        let pccs = try LocalPCCS(folder: directory.appendingPathComponent("collateral"))
        let client = try pccs.client()
        let quote = try Quote(
            parsing: platform.quote(
                reportData: [],
                enclave: SimulatedEnclave(
                    uniqueID: [UInt8](repeating: 1, count: 32), signerID: platform.defaultSigner.signerID)))
        let wrongPath = PCCSCollateralProvider(baseURL: pccs.baseURL + "/nothing-here", client: client)
        await #expect {
            _ = try await wrongPath.collateral(for: quote)
        } throws: { ($0 as? AttestationError)?.message.contains("answered 404") == true }

        // A server whose certificate the client does not trust is refused at the TLS layer.
        let untrusting = HTTPClient(eventLoopGroupProvider: .singleton)
        await #expect {
            _ = try await PCCSCollateralProvider(baseURL: pccs.baseURL, client: untrusting, timeout: .seconds(2))
                .collateral(for: quote)
        } throws: { ($0 as? AttestationError)?.message.contains("cannot fetch") == true }
        try await untrusting.shutdown()

        // A quote without a PCK chain cannot name its FMSPC.
        let sample = try Quote(parsing: TestData.bytes("dcap/intel-qvl-sample/quote.dat"))
        await #expect(throws: AttestationError.self) {
            _ = try await PCCSCollateralProvider(baseURL: pccs.baseURL, client: client).collateral(for: sample)
        }
        try await client.shutdown()
    }
}
