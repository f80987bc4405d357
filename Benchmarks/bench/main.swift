import Attestation
import Foundation
import Manifest
import CoordinatorTesting

// Manifest benchmarks: `swift run -c release bench [seconds-per-round]`.
// Prints one Markdown table row per benchmark for BENCHMARKS.md.

let secondsPerRound = CommandLine.arguments.dropFirst().first.flatMap(Double.init) ?? 2.0
let rounds = 5
let filter = CommandLine.arguments.dropFirst(2).first

func measure(_ name: String, _ body: () -> Bool) {
    if let filter, !name.contains(filter) { return }
    var rates: [Double] = []
    for _ in 0..<rounds {
        let start = DispatchTime.now().uptimeNanoseconds
        var iterations = 0
        var elapsed = 0.0
        while elapsed < secondsPerRound {
            precondition(body(), "\(name): unexpected result")
            iterations += 1
            elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        rates.append(Double(iterations) / elapsed)
    }
    rates.sort()
    let median = rates[rates.count / 2]
    print(
        String(
            format: "| %@ | %.0f /s | %.1f µs | %.0f–%.0f /s |", name, median, 1e6 / median, rates.first!, rates.last!))
}

/// dcap-qvl (PyPI) on the same quote in the same run, when ./scripts/test has installed it.
func measureDCAPQVL() {
    if let filter, !"dcap-qvl sgx_quote".contains(filter) { return }
    let python = TestData.packageRoot.appendingPathComponent(".venv/bin/python")
    guard FileManager.default.isExecutableFile(atPath: python.path) else {
        print("| dcap-qvl | not measured: run ./scripts/test once to install it into .venv | | |")
        return
    }
    let text: String
    do {
        text = try ProcessRunner.runBlocking(
            python,
            [
                TestData.packageRoot.appendingPathComponent("Benchmarks/dcap_qvl_bench.py").path,
                TestData.directory.path,
                String(secondsPerRound), String(rounds),
            ]
        ).stdout
    } catch {
        print("| dcap-qvl | not measured: \(error) | | |")
        return
    }
    for line in text.split(separator: "\n") {
        let parts = line.split(separator: " ")
        guard parts.count == 2, let rate = Double(parts[1]) else { continue }
        let label =
            parts[0] == "full"
            ? "full verification (QuoteCollateralV3.from_json + verify)" : "collateral object reused (verify only)"
        print(
            String(
                format: "| dcap-qvl 0.7.0, sgx_quote: %@ | %.0f /s | %.1f µs | median of %d |", label, rate, 1e6 / rate,
                rounds))
    }
}

do {
    let sample = try SampleManifests.sampleWithCertificates()
    let helloworld = try SampleManifests.withUniqueID("helloworld.json")
    print("| benchmark | median rate | per operation | range of \(rounds) rounds × \(secondsPerRound) s |")
    print("|---|---|---|---|")
    measure("sample-manifest.json (real certs): parse + validate + dry-run") {
        ManifestDocument.parse(sample).isValid
    }
    measure("helloworld.json: parse + validate + dry-run") {
        ManifestDocument.parse(helloworld).isValid
    }
    measure("sample-manifest.json: fingerprint only") {
        ManifestDocument.fingerprint(of: sample).count == 64
    }
    let quoteBytes = try TestData.bytes("dcap/dcap-qvl/sgx_quote")
    let bundle = try TestData.bytes("dcap/dcap-qvl/sgx_quote_collateral.json")
    let at = Date(timeIntervalSince1970: 1_751_328_000)
    measure("sgx_quote: full verification, nothing cached (collateral and quote parsed each time)") {
        guard let collateral = try? Collateral(dcapQVLBundle: bundle), let quote = try? Quote(parsing: quoteBytes)
        else { return false }
        return (try? QuoteVerifier().verify(quote, collateral: collateral, at: at)) != nil
    }
    let prepared = try QuoteVerifier().prepare(Collateral(dcapQVLBundle: bundle), at: at)
    measure("sgx_quote: prepared collateral, PCK chain cached (quote parsed and signature checked each time)") {
        guard let quote = try? Quote(parsing: quoteBytes) else { return false }
        return (try? QuoteVerifier().verify(quote, with: prepared, at: at)) != nil
    }
    measureDCAPQVL()
} catch {
    print("bench: cannot read the shared test data: \(error)")
    exit(1)
}
