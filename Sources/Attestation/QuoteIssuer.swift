import Foundation
import Synchronization

/// Produces this process's quote for the given report data (the marble side of attestation).
public protocol QuoteIssuer: Sendable {
    func issueQuote(reportData: [UInt8]) throws(AttestationError) -> [UInt8]
}

/// The 64 bytes of report data a quote binds.
enum ReportData {
    /// `bytes` padded with zeros to 64; more than 64 is an error.
    static func padded(_ bytes: [UInt8]) throws(AttestationError) -> [UInt8] {
        guard bytes.count <= 64 else {
            throw AttestationError(.policy, "report data holds at most 64 bytes, got \(bytes.count)")
        }
        return bytes + [UInt8](repeating: 0, count: 64 - bytes.count)
    }
}

/// Gramine's attestation pseudo-files: write the report data to `user_report_data`, read the
/// quote from `quote` (`/dev/attestation` inside a Gramine enclave; injectable for tests).
public struct GramineQuoteIssuer: QuoteIssuer {
    public static let defaultDirectory = URL(fileURLWithPath: "/dev/attestation")

    public let directory: URL

    public init(directory: URL = GramineQuoteIssuer.defaultDirectory) {
        self.directory = directory
    }

    /// True when the Gramine attestation interface exists (the process runs under Gramine).
    public static func isAvailable(at directory: URL = defaultDirectory) -> Bool {
        FileManager.default.fileExists(atPath: directory.appendingPathComponent("quote").path)
    }

    /// One report data and its quote at a time: the two files are the process's, so two threads
    /// writing report data before either reads would get each other's quote.
    private static let exclusive = Mutex(())

    public func issueQuote(reportData: [UInt8]) throws(AttestationError) -> [UInt8] {
        let padded = try ReportData.padded(reportData)
        return try Self.exclusive.withLock { _ throws(AttestationError) in try exchange(padded) }
    }

    private func exchange(_ padded: [UInt8]) throws(AttestationError) -> [UInt8] {
        do {
            let handle = try FileHandle(forWritingTo: directory.appendingPathComponent("user_report_data"))
            try handle.write(contentsOf: Data(padded))
            try handle.close()
        } catch {
            throw AttestationError(
                .unsupportedQuote,
                "cannot write \(directory.path)/user_report_data: \(error.localizedDescription); is this a Gramine enclave?"
            )
        }
        let quote: Data
        do {
            // Read to the end: a pseudo-file may report size 0 to stat, so sized reads get nothing.
            let handle = try FileHandle(forReadingFrom: directory.appendingPathComponent("quote"))
            defer { try? handle.close() }
            quote = try handle.readToEnd() ?? Data()
        } catch {
            throw AttestationError(
                .unsupportedQuote, "cannot read \(directory.path)/quote: \(error.localizedDescription)")
        }
        guard !quote.isEmpty else {
            throw AttestationError(.unsupportedQuote, "\(directory.path)/quote is empty: Gramine produced no quote")
        }
        return Array(quote)
    }
}

/// Issues quotes from a ``SimulatedPlatform`` for one simulated enclave identity.
public struct SimulatedQuoteIssuer: QuoteIssuer {
    public let platform: SimulatedPlatform
    public let enclave: SimulatedEnclave

    public init(platform: SimulatedPlatform, enclave: SimulatedEnclave) {
        self.platform = platform
        self.enclave = enclave
    }

    public func issueQuote(reportData: [UInt8]) throws(AttestationError) -> [UInt8] {
        guard reportData.count <= 64 else {
            throw AttestationError(.policy, "report data holds at most 64 bytes, got \(reportData.count)")
        }
        do {
            return try platform.quote(reportData: reportData, enclave: enclave)
        } catch {
            throw AttestationError(.unsupportedQuote, "the simulated platform could not issue a quote: \(error)")
        }
    }
}
