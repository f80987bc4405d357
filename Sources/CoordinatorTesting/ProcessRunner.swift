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
    /// Spawned with `posix_spawn` and reaped with `waitpid`, not through Foundation's `Process`:
    /// that one learns of an exit when a socket it hands the child closes, and a program that
    /// leaves a daemon behind (`podman run -d` and `podman kube play` leave conmon) passes the
    /// socket on, so the exit was never seen and the test hung beside a zombie. For the same
    /// reason output goes to unlinked temporary files, not pipes, and the child gets no
    /// descriptor of ours beyond its three.
    public static func runBlocking(_ executable: URL, _ arguments: [String]) throws -> Result {
        let out = try temporaryFile()
        let err = try temporaryFile()
        defer {
            try? out.close()
            try? err.close()
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, out.fileDescriptor, 1)
        posix_spawn_file_actions_adddup2(&actions, err.fileDescriptor, 2)
        guard let addCloseFrom = Self.addCloseFrom, addCloseFrom(&actions, 3) == 0 else {
            throw CocoaError(
                .featureUnsupported,
                userInfo: [
                    NSLocalizedDescriptionKey:
                        "posix_spawn_file_actions_addclosefrom_np is missing or failed: glibc 2.34 or later is needed"
                ])
        }
        // The child starts with no blocked signals and SIGPIPE as the default, whatever this process set.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([executable.path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, executable.path, &actions, &attributes, argv, environ)
        guard spawned == 0 else {
            throw CocoaError(
                .fileReadNoSuchFile,
                userInfo: [
                    NSLocalizedDescriptionKey: "cannot run \(executable.path): \(String(cString: strerror(spawned)))"
                ])
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        try out.seek(toOffset: 0)
        try err.seek(toOffset: 0)
        let outData = try out.readToEnd() ?? Data()
        let errData = try err.readToEnd() ?? Data()
        // The exit status, or the number of the signal that ended it (as Foundation reports them).
        let terminationStatus = status & 0x7f == 0 ? (status >> 8) & 0xff : status & 0x7f
        return Result(
            status: terminationStatus, stdoutData: outData, stderr: String(decoding: errData, as: UTF8.self))
    }

    private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later), which Swift's Glibc
    /// module does not declare.
    private static let addCloseFrom: AddCloseFrom? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np")
        else { return nil }
        return unsafeBitCast(symbol, to: AddCloseFrom.self)
    }()

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
