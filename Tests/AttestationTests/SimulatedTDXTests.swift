import Attestation
import Foundation
import Testing

/// The simulated platform's TDX v4 quotes: structurally Intel's (TD report 1.0, certification
/// data type 6 around the PCK chain), verified on the TDX path against the platform's TDX TCB
/// Info, TDX module identity and TD QE Identity.
@Suite struct SimulatedTDXTests {
    static let now = Date()
    static let td = SimulatedTD.named("simulated-td")

    static func verify(_ platform: SimulatedPlatform, _ quote: [UInt8], collateral: Collateral? = nil) throws
        -> VerifiedQuote
    {
        let parsed = try Quote(parsing: quote)
        return try platform.verifier.verify(
            parsed, collateral: collateral ?? platform.collateral(for: parsed), at: Self.now)
    }

    @Test func aTDsQuoteCarriesItsMeasurementsAndVerifiesUpToDate() throws {
        let platform = try SimulatedPlatform.generate(now: Self.now)
        let reportData = Array("tls key hash".utf8)
        let bytes = try platform.tdxQuote(reportData: reportData, td: Self.td)
        let quote = try Quote(parsing: bytes)
        #expect(quote.version == 4 && quote.isTDX)
        guard case .tdx(let report) = quote.body else {
            Issue.record("not a TD report")
            return
        }
        #expect(!report.isVersion15)
        #expect(report.mrTD == Self.td.mrTD && report.rtmrs == Self.td.rtmrs && report.mrSeam == Self.td.mrSeam)
        #expect(report.tdAttributes == SimulatedTD.productionAttributes && report.xfam == SimulatedTD.defaultXFAM)
        #expect(report.teeTCBSVN == platform.configuration.teeTCBSVN)
        #expect(Array(report.reportData.prefix(reportData.count)) == reportData)
        #expect(report.reportData.dropFirst(reportData.count).allSatisfy { $0 == 0 })
        #expect(quote.qeReport.isvProdID == 2, "the TD QE's product ID")

        let verified = try Self.verify(platform, bytes)
        #expect(verified.tee == .tdx && verified.tcbStatus == .upToDate && verified.advisoryIDs == [])
        #expect(verified.td?.mrTD == Self.td.mrTD && verified.td?.rtmrs == Self.td.rtmrs)
        #expect(verified.td?.mrSeam == Self.td.mrSeam && verified.td?.xfam == SimulatedTD.defaultXFAM)
        #expect(!verified.debug)
        #expect(try Self.verify(platform, platform.tdxQuote(reportData: [], td: .named("d", debug: true))).debug)
    }

    @Test func eachTEEsQuoteNeedsItsOwnCollateral() async throws {
        let platform = try SimulatedPlatform.generate(now: Self.now)
        let tdx = try platform.tdxQuote(reportData: [1], td: Self.td)
        #expect {
            try Self.verify(platform, tdx, collateral: platform.collateral)
        } throws: { ($0 as? AttestationError)?.code == .collateralMismatch }
        let enclave = SimulatedEnclave(
            uniqueID: Array(repeating: 1, count: 32), signerID: Array(repeating: 2, count: 32))
        let sgx = try platform.quote(reportData: [1], enclave: enclave)
        #expect {
            try Self.verify(platform, sgx, collateral: platform.tdxCollateral)
        } throws: { ($0 as? AttestationError)?.code == .collateralMismatch }
        #expect(try Self.verify(platform, sgx).tee == .sgx)

        // The provider a simulated Coordinator uses gives each quote its own.
        let provider = platform.collateralProvider
        #expect(try await provider.collateral(for: Quote(parsing: tdx)).tcbInfo.document.id == "TDX")
        #expect(try await provider.collateral(for: Quote(parsing: sgx)).tcbInfo.document.id == "SGX")
    }

    @Test func everySignedByteOfATDsQuoteCounts() throws {
        let platform = try SimulatedPlatform.generate(now: Self.now)
        let bytes = try platform.tdxQuote(reportData: [9], td: Self.td)
        // Header, TD report (MRTD, an RTMR, report data), and the QE report inside type 6.
        for offset in [10, 48 + 136, 48 + 400, 48 + 560, 636 + 134 + 70] {
            var tampered = bytes
            tampered[offset] ^= 0x01
            #expect(throws: AttestationError.self, "byte \(offset)") { try Self.verify(platform, tampered) }
        }
    }

    /// The TDX module's SVN (TEE_TCB_SVN byte 0) is rated by the `TDX_01` identity: a module
    /// below its UpToDate level is OutOfDate with the module's advisory, below every level refused.
    @Test func theTDXModuleIdentityRatesTheModulesSVN() throws {
        var configuration = SimulatedPlatform.Configuration()
        configuration.teeTCBSVN[0] = 3
        let older = try SimulatedPlatform.generate(configuration: configuration, now: Self.now)
        let verified = try Self.verify(older, older.tdxQuote(reportData: [], td: Self.td))
        #expect(verified.tcbStatus == .outOfDate && verified.advisoryIDs == ["INTEL-SA-01099"])

        configuration.teeTCBSVN[0] = 1
        let oldest = try SimulatedPlatform.generate(configuration: configuration, now: Self.now)
        #expect {
            try Self.verify(oldest, oldest.tdxQuote(reportData: [], td: Self.td))
        } throws: { ($0 as? AttestationError)?.code == .noMatchingTCBLevel }

        // The TDX microcode (byte 2) below the UpToDate level: the platform level is OutOfDate.
        configuration.teeTCBSVN = [4, 1, 1] + [UInt8](repeating: 0, count: 13)
        let microcode = try SimulatedPlatform.generate(configuration: configuration, now: Self.now)
        let rated = try Self.verify(microcode, microcode.tdxQuote(reportData: [], td: Self.td))
        #expect(rated.tcbStatus == .outOfDate && rated.advisoryIDs == ["INTEL-SA-01036"])
    }

    @Test func theTDXCollateralIsWrittenAndLoadedWithThePlatform() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tdx-platform-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        var configuration = SimulatedPlatform.Configuration()
        configuration.teeTCBSVN[0] = 5
        configuration.tdQESVN = 6
        try SimulatedPlatform.generate(configuration: configuration, now: Self.now).write(to: directory)
        let tdxFolder = directory.appendingPathComponent("collateral/tdx")
        #expect(FileManager.default.fileExists(atPath: tdxFolder.appendingPathComponent("tcbInfo.json").path))
        let loaded = try SimulatedPlatform.load(from: directory)
        #expect(loaded.configuration.teeTCBSVN[0] == 5 && loaded.configuration.tdQESVN == 6)
        #expect(loaded.tdxCollateral.tcbInfo.document.id == "TDX")
        #expect(loaded.tdxCollateral.qeIdentity.document.id == "TD_QE")
        #expect(try Self.verify(loaded, loaded.tdxQuote(reportData: [], td: Self.td)).tcbStatus == .upToDate)

        // A platform written before TDX was simulated: TDX collateral is signed when it loads.
        try FileManager.default.removeItem(at: tdxFolder)
        let old = try SimulatedPlatform.load(from: directory)
        #expect(try Self.verify(old, old.tdxQuote(reportData: [], td: Self.td)).tcbStatus == .upToDate)
    }
}
