import Attestation
import CoordinatorTesting
import Crypto
import Foundation
import Testing

/// Same evidence, two verifiers: ours and the PyPI package dcap-qvl (installed into `.venv` by
/// `./scripts/test`). They must agree on accept/reject and on status and advisories, except
/// where they differ by design; each such case is named.
@Suite struct DifferentialTests {
    struct Case: Codable {
        var name: String
        var quote: String
        var collateral: String
        var time: Int
        var root: String?
    }

    struct Result: Codable {
        var name: String
        var ok: Bool
        var status: String?
        var advisories: [String]?
        var error: String?
    }

    static var python: URL { TestData.python }

    @Test func agreesWithDCAPQVLOnRealAndSimulatedQuotes() async throws {
        try #require(
            FileManager.default.isExecutableFile(atPath: Self.python.path),
            "no Python with dcap-qvl at \(Self.python.path): run ./scripts/test, which creates it")
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("differential-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }

        var cases: [Case] = []
        var ours: [String: Result] = [:]
        var authDataCases: Set<String> = []
        let dcap = TestData.url("dcap/dcap-qvl")
        for (name, time) in [
            ("sgx_quote", 1_751_328_000), ("tdx_quote", 1_751_328_000), ("tdx_quote_outdated", 1_774_003_274),
        ] {
            let quote = dcap.appendingPathComponent(name).path
            let collateral = dcap.appendingPathComponent("\(name)_collateral.json").path
            cases.append(Case(name: name, quote: quote, collateral: collateral, time: time, root: nil))
            ours[name] = Self.verify(
                quote: try TestData.bytes("dcap/dcap-qvl/\(name)"),
                collateral: try Collateral(dcapQVLBundle: TestData.bytes("dcap/dcap-qvl/\(name)_collateral.json")),
                verifier: QuoteVerifier(), time: time, name: name)
        }

        /// One simulated case: the quote written where dcap-qvl reads it, our verdict kept.
        func add(
            _ name: String, _ quote: [UInt8], at time: Int, platform: SimulatedPlatform, collateral: Collateral,
            files: (quote: URL, collateral: URL, root: URL)
        ) throws {
            try Data(quote).write(to: files.quote)
            cases.append(
                Case(
                    name: name, quote: files.quote.path, collateral: files.collateral.path, time: time,
                    root: files.root.path))
            ours[name] = Self.verify(
                quote: quote, collateral: collateral, verifier: platform.verifier, time: time, name: name)
        }

        var random = SeededRandom(state: 0xD1FF_2026)
        let now = Int(Date().timeIntervalSince1970)
        for platformIndex in 0..<24 {
            var configuration = SimulatedPlatform.Configuration()
            configuration.tcbComponents[0] = UInt8.random(in: 1...5, using: &random)
            configuration.tcbComponents[2] = UInt8.random(in: 1...4, using: &random)
            configuration.pceSVN = UInt16.random(in: 10...14, using: &random)
            configuration.revokePCK = platformIndex % 12 == 11
            let (platform, folder, collateralPath, rootPath) = try Self.platform(
                configuration, now: now, in: work.appendingPathComponent("p\(platformIndex)"), tdx: false)
            for quoteIndex in 0..<45 {
                let name = "sim-\(platformIndex)-\(quoteIndex)"
                let enclave = SimulatedEnclave(
                    uniqueID: (0..<32).map { _ in UInt8.random(in: 0...255, using: &random) },
                    signerID: platform.defaultSigner.signerID, productID: UInt16.random(in: 0...3, using: &random),
                    securityVersion: UInt16.random(in: 0...9, using: &random), debug: quoteIndex % 9 == 4)
                // Every 10th quote has QE authentication data of another size than the 32 bytes Intel's QE sends.
                let authSize = quoteIndex % 10 == 3 ? [0, 16, 64, 100][quoteIndex % 4] : 32
                var quote = try platform.quote(
                    reportData: (0..<64).map { _ in UInt8.random(in: 0...255, using: &random) }, enclave: enclave,
                    qeAuthDataSize: authSize)
                if quoteIndex % 3 == 1 {
                    // Flip one byte of the signed parts (header, report, signatures, keys, QE report).
                    quote[Int.random(in: 0..<1012, using: &random)] ^= UInt8.random(in: 1...255, using: &random)
                }
                let time = quoteIndex % 15 == 7 ? now + 400 * 86_400 : now
                try add(
                    name, quote, at: time, platform: platform, collateral: platform.collateral,
                    files: (folder.appendingPathComponent("\(quoteIndex).quote"), collateralPath, rootPath))
                if authSize != 32 { authDataCases.insert(name) }
            }
        }
        // TDX: every TDX module SVN (byte 0 of TEE_TCB_SVN, 1–5), major version (byte 1, 0 or 1)
        // and TDX microcode SVN (byte 2, 0–3) around the TCB levels ([3, 0, 2], [2, 0, 1]) and the
        // module identity's levels (4 UpToDate, 2 OutOfDate), five quotes each.
        var tdxPlatforms = 0
        // What a TDX package naming only the MRTD says of the debug TDs and those without SEPT_VE_DISABLE.
        var tdxPolicyRefusals: [String: String] = [:]
        // Quote 2 of each platform is a debug TD, quote 4 a TD without SEPT_VE_DISABLE.
        func td(_ name: String, _ index: Int) -> SimulatedTD {
            var td = SimulatedTD.named(name, debug: index == 2)
            if index == 4 { td.tdAttributes[3] = 0 }
            return td
        }
        for moduleSVN: UInt8 in 1...5 {
            for major: UInt8 in 0...1 {
                for microcode: UInt8 in 0...3 {
                    var configuration = SimulatedPlatform.Configuration()
                    configuration.teeTCBSVN = [moduleSVN, major, microcode] + [UInt8](repeating: 0, count: 13)
                    configuration.revokePCK = tdxPlatforms % 13 == 12
                    let (platform, folder, collateralPath, rootPath) = try Self.platform(
                        configuration, now: now, in: work.appendingPathComponent("tdx\(tdxPlatforms)"), tdx: true)
                    for quoteIndex in 0..<5 {
                        let name = "tdx-\(moduleSVN).\(major).\(microcode)-\(quoteIndex)"
                        var quote = try platform.tdxQuote(
                            reportData: (0..<64).map { _ in UInt8.random(in: 0...255, using: &random) },
                            td: td(name, quoteIndex))
                        if quoteIndex == 1 {
                            // Flip one byte of the signed parts (header, TD report, signature, key, QE report).
                            quote[Int.random(in: 0..<1152, using: &random)] ^= UInt8.random(in: 1...255, using: &random)
                        }
                        let time = quoteIndex == 3 ? now + 400 * 86_400 : now
                        try add(
                            name, quote, at: time, platform: platform, collateral: platform.tdxCollateral,
                            files: (folder.appendingPathComponent("\(quoteIndex).quote"), collateralPath, rootPath))
                        if quoteIndex == 2 || quoteIndex == 4,
                            let verified = try? platform.verifier.verify(
                                Quote(parsing: quote), collateral: platform.tdxCollateral,
                                at: Date(timeIntervalSince1970: Double(time)))
                        {
                            var policy = PackagePolicy(acceptedTCBStatuses: [.upToDate, .outOfDate])
                            policy.tdx = TDXMeasurementRule(mrTD: td(name, quoteIndex).mrTD)
                            if case .rejected(let reason) = policy.evaluate(verified) {
                                tdxPolicyRefusals[name] = reason
                            }
                        }
                    }
                    tdxPlatforms += 1
                }
            }
        }
        #expect(cases.count >= 1_280)

        let input = work.appendingPathComponent("cases.json")
        try JSONEncoder().encode(cases).write(to: input)
        let theirs = try await Self.runDCAPQVL(input)
        try #require(theirs.count == cases.count)

        var agreed = 0
        var knownDifferences: [String: Int] = [:]
        for result in theirs {
            let mine = try #require(ours[result.name])
            if mine.ok == result.ok
                && (!mine.ok || (mine.status == result.status && mine.advisories == result.advisories))
            {
                agreed += 1
                continue
            }
            // dcap-qvl reads QE authentication data as 32 bytes; Intel's library takes any size
            // the quote declares, and so do we.
            if authDataCases.contains(result.name), mine.ok != result.ok {
                knownDifferences["dcap-qvl assumes 32-byte QE authentication data", default: 0] += 1
                continue
            }
            // dcap-qvl refuses debug TDs and TDs without SEPT_VE_DISABLE while verifying; ours
            // verifies them and the package refuses them (unless it is a Debug package, or names
            // these TDAttributes).
            if mine.ok, !result.ok, let refusal = tdxPolicyRefusals[result.name] {
                let debug = result.error?.contains("Debug mode") == true && refusal.contains("debug mode")
                let sept = result.error?.contains("SEPT_VE_DISABLE") == true && refusal.contains("SEPT_VE_DISABLE")
                if debug || sept {
                    knownDifferences[
                        debug
                            ? "dcap-qvl refuses debug TDs, ours leaves them to the package"
                            : "dcap-qvl refuses TDs without SEPT_VE_DISABLE, ours leaves them to the package",
                        default: 0] += 1
                    continue
                }
            }
            Issue.record("\(result.name): ours \(mine), dcap-qvl \(result)")
        }
        print(
            "differential: \(cases.count) cases, \(agreed) identical verdicts, known differences: \(knownDifferences)")
        #expect(agreed + knownDifferences.values.reduce(0, +) == cases.count)
        #expect(knownDifferences.count == 3, "each known difference still occurs: \(knownDifferences)")
    }

    /// A platform generated at `now`, its collateral (SGX or TDX) as a dcap-qvl bundle and its
    /// root as DER in `folder`.
    static func platform(_ configuration: SimulatedPlatform.Configuration, now: Int, in folder: URL, tdx: Bool)
        throws -> (platform: SimulatedPlatform, folder: URL, collateral: URL, root: URL)
    {
        let platform = try SimulatedPlatform.generate(
            configuration: configuration, now: Date(timeIntervalSince1970: Double(now)))
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let collateral = folder.appendingPathComponent("collateral.json")
        try Data((tdx ? platform.tdxCollateral : platform.collateral).dcapQVLBundle()).write(to: collateral)
        let root = folder.appendingPathComponent("root.der")
        try Data(platform.rootCertificate.serializeAsPEM().derBytes).write(to: root)
        return (platform, folder, collateral, root)
    }

    static func verify(quote: [UInt8], collateral: Collateral, verifier: QuoteVerifier, time: Int, name: String)
        -> Result
    {
        do {
            let verified = try verifier.verify(
                Quote(parsing: quote), collateral: collateral, at: Date(timeIntervalSince1970: Double(time)))
            return Result(
                name: name, ok: true, status: verified.tcbStatus.rawValue, advisories: verified.advisoryIDs, error: nil)
        } catch {
            return Result(name: name, ok: false, status: nil, advisories: nil, error: "\(error)")
        }
    }

    static func runDCAPQVL(_ input: URL) async throws -> [Result] {
        let script = TestData.packageRoot.appendingPathComponent("Tests/Differential/dcap_qvl_verify.py")
        let run = try await ProcessRunner.run(python, [script.path, input.path])
        guard run.status == 0 else {
            throw AttestationError(.policy, "dcap-qvl script failed (\(run.status)): \(run.stderr)")
        }
        let data = run.stdoutData
        return try JSONDecoder().decode([Result].self, from: data)
    }
}
