import Attestation
import Crypto
import Foundation
import CoordinatorTesting
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

        var random = SeededRandom(state: 0xD1FF_2026)
        let now = Int(Date().timeIntervalSince1970)
        for platformIndex in 0..<24 {
            var configuration = SimulatedPlatform.Configuration()
            configuration.tcbComponents[0] = UInt8.random(in: 1...5, using: &random)
            configuration.tcbComponents[2] = UInt8.random(in: 1...4, using: &random)
            configuration.pceSVN = UInt16.random(in: 10...14, using: &random)
            configuration.revokePCK = platformIndex % 12 == 11
            let platform = try SimulatedPlatform.generate(
                configuration: configuration, now: Date(timeIntervalSince1970: Double(now)))
            let folder = work.appendingPathComponent("p\(platformIndex)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let collateralPath = folder.appendingPathComponent("collateral.json")
            try Data(platform.collateral.dcapQVLBundle()).write(to: collateralPath)
            let rootPath = folder.appendingPathComponent("root.der")
            try Data(platform.rootCertificate.serializeAsPEM().derBytes).write(to: rootPath)
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
                let quotePath = folder.appendingPathComponent("\(quoteIndex).quote")
                try Data(quote).write(to: quotePath)
                cases.append(
                    Case(
                        name: name, quote: quotePath.path, collateral: collateralPath.path, time: time,
                        root: rootPath.path))
                ours[name] = Self.verify(
                    quote: quote, collateral: platform.collateral, verifier: platform.verifier, time: time, name: name)
                if authSize != 32 { authDataCases.insert(name) }
            }
        }
        #expect(cases.count >= 1_000)

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
            Issue.record("\(result.name): ours \(mine), dcap-qvl \(result)")
        }
        print(
            "differential: \(cases.count) cases, \(agreed) identical verdicts, known differences: \(knownDifferences)")
        #expect(agreed + knownDifferences.values.reduce(0, +) == cases.count)
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
