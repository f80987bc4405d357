import Attestation
import Foundation
import Synchronization

/// Gramine's attestation interface for tests, in a directory: `attestation_type` says `dcap`,
/// `keys/_sgx_mrsigner` and `keys/_sgx_mrenclave` hold the sealing keys given, and
/// `user_report_data` and `quote` are FIFOs that a thread of this object serves: each report
/// data written is answered by one quote read, the simulated platform's quote of `enclave` for
/// exactly that report data.
public final class FakeGramine: Sendable {
    public let directory: URL
    let platform: SimulatedPlatform
    let enclave: SimulatedEnclave
    private let stopped = Mutex(false)
    private let served = Mutex(0)

    /// How many quotes were read.
    public var quotesServed: Int { served.withLock { $0 } }

    public init(
        directory: URL, platform: SimulatedPlatform, enclave: SimulatedEnclave, signerKey: [UInt8],
        enclaveKey: [UInt8]
    ) throws {
        self.directory = directory
        self.platform = platform
        self.enclave = enclave
        let keys = directory.appendingPathComponent("keys")
        try FileManager.default.createDirectory(at: keys, withIntermediateDirectories: true)
        try Data("dcap\n".utf8).write(to: directory.appendingPathComponent("attestation_type"))
        try Data(signerKey).write(to: keys.appendingPathComponent("_sgx_mrsigner"))
        try Data(enclaveKey).write(to: keys.appendingPathComponent("_sgx_mrenclave"))
        for path in [reportDataPath, quotePath] where mkfifo(path, 0o600) != 0 {
            throw LocalPCCS.Failure(description: "mkfifo \(path) failed")
        }
        // A reader that goes away must not kill the test process.
        signal(SIGPIPE, SIG_IGN)
        // A thread of its own: opening a FIFO blocks, which must not hold a cooperative thread.
        let thread = Thread { [self] in serve() }
        thread.start()
    }

    var quotePath: String { directory.appendingPathComponent("quote").path }
    var reportDataPath: String { directory.appendingPathComponent("user_report_data").path }

    private func serve() {
        while !stopped.withLock({ $0 }) {
            // One request: the report data up to the writer's close, then one quote.
            let input = open(reportDataPath, O_RDONLY)
            guard input >= 0 else { return }
            var reportData: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 256)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
                guard count > 0 else { break }
                reportData += buffer[0..<count]
            }
            close(input)
            if stopped.withLock({ $0 }) { return }
            let fd = open(quotePath, O_WRONLY)
            guard fd >= 0 else { return }
            defer { close(fd) }
            let quote = (try? platform.quote(reportData: reportData, enclave: enclave)) ?? []
            var offset = 0
            while offset < quote.count {
                let written = quote[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                guard written > 0 else { break }
                offset += written
            }
            served.withLock { $0 += 1 }
        }
    }

    /// Ends the serving thread (it may be waiting for a reader).
    public func stop() {
        stopped.withLock { $0 = true }
        // Wakes a thread waiting for a writer of the report data (nothing happens otherwise).
        let fd = open(reportDataPath, O_WRONLY | O_NONBLOCK)
        if fd >= 0 { close(fd) }
    }

    deinit { stop() }
}
