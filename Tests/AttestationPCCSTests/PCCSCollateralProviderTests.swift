import AsyncHTTPClient
import Attestation
import AttestationPCCS
import CoordinatorTesting
import Crypto
import Foundation
import NIOSSL
import SwiftASN1
import Testing
import X509

/// The HTTPS collateral provider against a local PCCS stand-in (Tests/Support/pcs_server.py)
/// serving test data over TLS on 127.0.0.1.
@Suite struct PCCSCollateralProviderTests {
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

    /// A simulated platform, a local PCCS serving its collateral (held while `hold` exists) and
    /// a quote of the platform.
    static func platformBehindAPCCS(holding: Bool = false) throws -> (
        platform: SimulatedPlatform, pccs: LocalPCCS, quote: Quote, hold: URL
    ) {
        let platform = try SimulatedPlatform.generate()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sim-\(UUID().uuidString)")
        try platform.write(to: directory)
        let hold = directory.appendingPathComponent("hold")
        if holding { try Data().write(to: hold) }
        let pccs = try LocalPCCS(folder: directory.appendingPathComponent("collateral"), holdFile: hold)
        let quote = try Quote(
            parsing: platform.quote(
                reportData: [],
                enclave: SimulatedEnclave(
                    uniqueID: [UInt8](repeating: 1, count: 32), signerID: platform.defaultSigner.signerID)))
        return (platform, pccs, quote, hold)
    }

    @Test func serviceErrorsAreClear() async throws {
        let (_, pccs, quote, _) = try Self.platformBehindAPCCS()
        let client = try pccs.client()
        let wrongPath = PCCSCollateralProvider(baseURL: pccs.baseURL + "/nothing-here", client: client)
        await #expect {
            _ = try await wrongPath.collateral(for: quote)
        } throws: { error in
            // A 404 will not change by retrying; a service that cannot be reached may.
            let error = error as? AttestationError
            return error?.code == .malformedCollateral && error?.message.contains("answered 404") == true
        }
        await #expect {
            _ = try await PCCSCollateralProvider(baseURL: "https://127.0.0.1:1", client: client).collateral(for: quote)
        } throws: { ($0 as? AttestationError)?.code == .collateralUnavailable }

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

    /// Concurrent quotes of one platform wait for one fetch (a burst of marbles after a restart
    /// asks the PCCS once, not once each).
    @Test func concurrentQuotesShareOneFetch() async throws {
        let (_, pccs, quote, hold) = try Self.platformBehindAPCCS(holding: true)
        let client = try pccs.client()
        let provider = PCCSCollateralProvider(baseURL: pccs.baseURL, client: client)
        let fetches = Task {
            try await withThrowingTaskGroup(of: Collateral.self) { group in
                for _ in 0..<8 { group.addTask { try await provider.collateral(for: quote) } }
                return try await group.reduce(into: [Collateral]()) { $0.append($1) }
            }
        }
        let deadline = ContinuousClock.now + .seconds(30)
        var asked = 0
        for _ in 0..<600 where ContinuousClock.now < deadline && asked == 0 {
            asked = try await pccs.stats(client)["/sgx/certification/v4/tcb"] ?? 0
            if asked == 0 { try await Task.sleep(for: .milliseconds(20)) }
        }
        // Let the other seven reach the provider while the first fetch waits.
        try await Task.sleep(for: .milliseconds(200))
        try FileManager.default.removeItem(at: hold)
        let all = try await fetches.value
        #expect(all.count == 8)
        #expect(Set(all.map(\.tcbInfo.bytes)).count == 1)
        #expect(try await pccs.stats(client)["/sgx/certification/v4/tcb"] == 1)
        try await client.shutdown()
    }

    /// `use_secure_cert: false` (Intel's setting for a PCCS with a self-signed certificate) takes
    /// any certificate; true checks it against the system's roots, which do not know this one.
    @Test func theClientFollowsUseSecureCert() async throws {
        let (platform, pccs, quote, _) = try Self.platformBehindAPCCS()
        let insecure = QCNLConfiguration(collateralURL: pccs.baseURL, useSecureCert: false)
        let lenient = PCCSCollateralProvider.makeClient(for: insecure)
        let collateral = try await PCCSCollateralProvider(configuration: insecure, client: lenient).collateral(
            for: quote)
        #expect(try platform.verifier.verify(quote, collateral: collateral, at: Date()).tcbStatus == .upToDate)
        try await lenient.shutdown()

        let secure = QCNLConfiguration(collateralURL: pccs.baseURL)
        let strict = PCCSCollateralProvider.makeClient(for: secure)
        await #expect {
            _ = try await PCCSCollateralProvider(configuration: secure, client: strict).collateral(for: quote)
        } throws: { ($0 as? AttestationError)?.code == .collateralUnavailable }
        try await strict.shutdown()
    }
}
