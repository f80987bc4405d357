import Foundation
import Manifest
import ManifestTesting

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
} catch {
    print("bench: cannot read the shared test data: \(error)")
    exit(1)
}
