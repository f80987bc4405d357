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
    /// Output goes to unlinked temporary files, not pipes: a program that leaves a daemon behind
    /// (`podman run -d`, `podman kube play` leave conmon) hands it its output descriptors, and a
    /// pipe would then never reach its end; a file is read once the program itself has exited.
    public static func runBlocking(_ executable: URL, _ arguments: [String]) throws -> Result {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let out = try temporaryFile()
        let err = try temporaryFile()
        defer {
            try? out.close()
            try? err.close()
        }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = err
        try process.run()
        process.waitUntilExit()
        try out.seek(toOffset: 0)
        try err.seek(toOffset: 0)
        let outData = try out.readToEnd() ?? Data()
        let errData = try err.readToEnd() ?? Data()
        return Result(
            status: process.terminationStatus, stdoutData: outData, stderr: String(decoding: errData, as: UTF8.self))
    }

    /// A file open for reading and writing whose name is already gone.
    private static func temporaryFile() throws -> FileHandle {
        var template = Array((FileManager.default.temporaryDirectory.path + "/process-output-XXXXXX").utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: "mkstemp: errno \(errno)"])
        }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        return FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
    }
}
