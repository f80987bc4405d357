import Attestation
import Foundation

/// Gramine's attestation interface for tests, in a directory: `attestation_type` says `dcap`,
/// `keys/_sgx_mrsigner` and `keys/_sgx_mrenclave` hold the sealing keys given, and
/// `user_report_data` and `quote` are FIFOs: each report data written is answered by one quote
/// read, the simulated platform's quote of `enclave` for exactly that report data.
public final class FakeGramine: Sendable {
    public let directory: URL
    private let responder: FIFOResponder

    /// How many quotes were asked for.
    public var quotesServed: Int { responder.received.count }
    /// The report data written, in order.
    public var reportData: [[UInt8]] { responder.received }

    public init(
        directory: URL, platform: SimulatedPlatform, enclave: SimulatedEnclave, signerKey: [UInt8],
        enclaveKey: [UInt8]
    ) throws {
        self.directory = directory
        let keys = directory.appendingPathComponent("keys")
        try FileManager.default.createDirectory(at: keys, withIntermediateDirectories: true)
        try Data("dcap\n".utf8).write(to: directory.appendingPathComponent("attestation_type"))
        try Data(signerKey).write(to: keys.appendingPathComponent("_sgx_mrsigner"))
        try Data(enclaveKey).write(to: keys.appendingPathComponent("_sgx_mrenclave"))
        responder = try FIFOResponder(
            request: directory.appendingPathComponent("user_report_data"),
            response: directory.appendingPathComponent("quote")
        ) { reportData in
            (try? platform.quote(reportData: reportData, enclave: enclave)) ?? []
        }
    }

    public func stop() { responder.stop() }
}

/// Linux's configfs-tsm report interface for tests: `report/marblerun/` with `provider`
/// (`tdx_guest`), `generation`, and `inblob` / `outblob` FIFOs; each report data written
/// raises `generation` by one and is answered by `quote(reportData)`.
public final class FakeTSM: Sendable {
    public let directory: URL
    private let responder: FIFOResponder

    /// The report data received, in order.
    public var reportData: [[UInt8]] { responder.received }

    /// `generationStep` above 1 plays another writer using the entry during a request.
    public init(
        directory: URL, provider: String = "tdx_guest", generationStep: Int = 1,
        quote: @escaping @Sendable ([UInt8]) -> [UInt8]
    ) throws {
        self.directory = directory
        let entry = directory.appendingPathComponent("report").appendingPathComponent(TSMQuoteIssuer.entryName)
        try FileManager.default.createDirectory(at: entry, withIntermediateDirectories: true)
        try Data("\(provider)\n".utf8).write(to: entry.appendingPathComponent("provider"))
        let generation = entry.appendingPathComponent("generation")
        try Data("0\n".utf8).write(to: generation)
        responder = try FIFOResponder(
            request: entry.appendingPathComponent("inblob"), response: entry.appendingPathComponent("outblob")
        ) { reportData in
            let current =
                (try? String(contentsOf: generation, encoding: .utf8)).flatMap {
                    Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
                } ?? 0
            try? Data("\(current + generationStep)\n".utf8).write(to: generation, options: .atomic)
            return quote(reportData)
        }
    }

    public func stop() { responder.stop() }
}
