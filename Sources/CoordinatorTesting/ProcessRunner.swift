import Foundation

/// Runs a program to completion and captures its output (tests and benchmarks drive real
/// binaries and tools we did not write: openssl, dcap-qvl, our own CLI).
public enum ProcessRunner {
    public struct Result: Sendable {
        public var status: Int32
        public var stdoutData: Data
        public var stderr: String

        public var stdout: String { String(decoding: stdoutData, as: UTF8.self) }
    }

    /// Runs the program on a thread of its own, so that waiting for it never holds one of the
    /// few threads Swift concurrency runs tasks on (a test suite runs many tasks at once).
    public static func run(_ executable: URL, _ arguments: [String]) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(with: Swift.Result { try runBlocking(executable, arguments) })
            }.start()
        }
    }

    /// Runs the program and waits on the calling thread: for top-level code only.
    ///
    /// Reads standard output to its end, then standard error: the programs run here write
    /// little to standard error, so it cannot fill its pipe while output is read.
    public static func runBlocking(_ executable: URL, _ arguments: [String]) throws -> Result {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus, stdoutData: outData, stderr: String(decoding: errData, as: UTF8.self))
    }
}
