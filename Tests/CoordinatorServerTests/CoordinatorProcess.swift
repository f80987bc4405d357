import CoordinatorTesting
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The real `coordinator` binary on loopback, with its own simulation and seal directories.
final class CoordinatorProcess: @unchecked Sendable {
    static let binary = product("coordinator")

    /// An executable built beside the tests (`coordinator`, `marblerun`, `marble`).
    static func product(_ name: String) -> URL { TestData.product(name) }

    let directory: URL
    // Below Linux's ephemeral range (32768–60999), where outgoing connections could hold them,
    // and distinct for every Coordinator of this test run (random picks collided in CI).
    private static let nextPortOffset = Mutex(Int.random(in: 0..<7_000))
    let clientPort: Int
    let meshPort: Int
    let metricsPort: Int
    private var process: Process?
    private var exit: Task<Int32, Never>?

    let simulationDirectory: URL
    let sealDirectory: URL
    var logFile: URL { directory.appendingPathComponent("coordinator.log") }
    var clientURL: String { "https://localhost:\(clientPort)" }

    /// A Coordinator of its own, or a replica of `other` on the same simulated platform, with its
    /// own sealing key, ports and log.
    init(sharingPlatformWith other: CoordinatorProcess? = nil) throws {
        let offset = Self.nextPortOffset.withLock { offset in
            defer { offset = (offset + 1) % 7_000 }
            return offset
        }
        (clientPort, meshPort, metricsPort) = (10_000 + offset, 17_000 + offset, 24_000 + offset)
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("coordinator-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        simulationDirectory = other?.simulationDirectory ?? directory.appendingPathComponent("simulation")
        sealDirectory = directory.appendingPathComponent("seal")
    }

    /// Starts the binary and waits, with a deadline, until the client API answers.
    /// Without `simulation`, `--simulation` is not passed (a Gramine enclave or a refusal).
    func start(extraArguments: [String] = [], environment: [String: String] = [:], simulation: Bool = true)
        async throws
    {
        let process = Process()
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.executableURL = Self.binary
        process.arguments =
            [
                "--seal-dir", sealDirectory.path,
                "--client-addr", "127.0.0.1:\(clientPort)", "--mesh-addr", "127.0.0.1:\(meshPort)",
                "--prometheus-addr", "127.0.0.1:\(metricsPort)",
            ] + (simulation ? ["--simulation", simulationDirectory.path] : []) + extraArguments
        if !FileManager.default.fileExists(atPath: logFile.path) {
            try Data().write(to: logFile)
        }
        let logHandle = try FileHandle(forWritingTo: logFile)
        try logHandle.seekToEnd()
        process.standardOutput = logHandle
        process.standardError = logHandle
        let exited = AsyncStream<Int32>.makeStream()
        process.terminationHandler = { exited.continuation.yield($0.terminationStatus) }
        try process.run()
        self.process = process
        exit = Task { await exited.stream.first { _ in true } ?? -1 }
        // Both a time and a number of probes must run out: a busy test run can leave this task
        // waiting for a thread, which must not count as the Coordinator being slow.
        let deadline = ContinuousClock.now + .seconds(60)
        var probes = 0
        while ContinuousClock.now < deadline || probes < 30 {
            if !process.isRunning { break }
            probes += 1
            // A short limit per probe: one hung connection must not use up the whole deadline.
            if let status = try? await curl(["-k", "--max-time", "5", "\(clientURL)/api/v2/status"]), status.status == 0
            {
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("the coordinator did not start: \(log())")
    }

    /// SIGTERM, then the exit status once the process has shut down.
    func stop() async -> Int32 {
        guard let process, let exit else { return -1 }
        process.terminate()
        let status = await exit.value
        self.process = nil
        return status
    }

    /// SIGKILL: no shutdown at all, as a crash or a power cut; waits for the exit.
    func kill() async {
        guard let process, let exit else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        _ = await exit.value
        self.process = nil
    }

    /// The exit status of a process that ended by itself (a refused start-up).
    func exitStatus() async -> Int32 {
        let status = await exit?.value ?? -1
        process = nil
        return status
    }

    /// The running process's resident memory in bytes (VmRSS of /proc/PID/status).
    func residentMemory() -> Int? {
        guard let process,
            let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kibibytes = Int(line.split(separator: " ").dropFirst().first ?? "")
        else { return nil }
        return kibibytes << 10
    }

    func log() -> String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    /// Runs curl (a client we did not write) and returns its result.
    func curl(_ arguments: [String]) async throws -> ProcessRunner.Result {
        try await ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/curl"), ["-s", "--max-time", "30"] + arguments)
    }

    /// Sets `manifest` through the client API; anything but 200 is a failure with the answer.
    func setManifest(_ manifest: [UInt8]) async throws {
        let answer = try await request(
            "POST", "/api/v2/manifest", body: #"{"manifest":"\#(Data(manifest).base64EncodedString())"}"#)
        guard answer.status == 200 else { throw TestFailure("setting the manifest: \(answer.status) \(answer.json)") }
    }

    /// A JSend answer: HTTP status and the decoded envelope.
    /// `identity` is a client certificate and key (PEM files) to present.
    func request(
        _ method: String, _ path: String, body: String? = nil, bodyFile: String? = nil, cacert: String? = nil,
        identity: (cert: String, key: String)? = nil
    ) async throws -> (status: Int, json: [String: Any]) {
        var arguments = ["-X", method, "-w", "\n%{http_code}"]
        arguments += cacert.map { ["--cacert", $0] } ?? ["-k"]
        if let identity { arguments += ["--cert", identity.cert, "--key", identity.key] }
        if let body { arguments += ["--data-binary", body] }
        if let bodyFile { arguments += ["--data-binary", "@\(bodyFile)"] }
        let result = try await curl(arguments + [clientURL + path])
        guard result.status == 0 else { throw TestFailure("curl failed (\(result.status)): \(result.stderr)") }
        let output = result.stdout
        guard let split = output.lastIndex(of: "\n"), let status = Int(output[output.index(after: split)...]) else {
            throw TestFailure("unexpected curl output: \(output.prefix(200))")
        }
        let json = try JSONSerialization.jsonObject(with: Data(output[..<split].utf8)) as? [String: Any] ?? [:]
        return (status, json)
    }

    deinit {
        process?.terminate()
        try? FileManager.default.removeItem(at: directory)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
