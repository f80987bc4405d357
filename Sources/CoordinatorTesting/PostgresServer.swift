import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A throwaway PostgreSQL server on loopback for tests and benchmarks: Debian's binaries
/// (`/usr/lib/postgresql/N/bin`, installed by scripts/test), a fresh cluster in a temporary
/// directory, trust authentication for the `marblerun` superuser. Run as root, the server runs as
/// the `postgres` user (PostgreSQL refuses root).
public final class PostgresServer: @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public let directory: URL
    public let port: Int
    public let binaries: URL
    private let tls: Bool
    private let process = Mutex<Process?>(nil)

    private static let nextPort = Mutex(Int.random(in: 0..<900))

    /// Makes a cluster (initdb); `tls` adds a self-signed server certificate (`caFile`).
    public init(tls: Bool = false) async throws {
        guard let binaries = Self.findBinaries() else {
            throw Failure(
                description:
                    "PostgreSQL's server binaries are not installed: run ./scripts/test (it installs Debian's postgresql package) or apt-get install postgresql"
            )
        }
        self.binaries = binaries
        self.tls = tls
        port =
            9_000
            + Self.nextPort.withLock { next in
                defer { next = (next + 1) % 900 }
                return next
            }
        directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("marblerun-pg-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try await asServerUser(["chown", "-R", "postgres:postgres", directory.path], asRoot: true)
        try await asServerUser([
            binaries.appendingPathComponent("initdb").path, "-D", dataDirectory.path, "-U", "marblerun", "-A", "trust",
            "-E", "UTF8", "--no-sync",
        ])
        if tls {
            let key = dataDirectory.appendingPathComponent("server.key").path
            let certificate = dataDirectory.appendingPathComponent("server.crt").path
            try await asServerUser([
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days",
                "2",
                "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key,
                "-out",
                certificate,
            ])
            try await asServerUser(["chmod", "600", key])
        }
    }

    public var dataDirectory: URL { directory.appendingPathComponent("data") }
    /// The server certificate to trust when started with `tls`.
    public var caFile: String { dataDirectory.appendingPathComponent("server.crt").path }
    public var logFile: URL { directory.appendingPathComponent("postgres.log") }

    /// A connection URL for `database` (default: the `postgres` database).
    public func url(database: String = "postgres", sslmode: String? = nil) -> String {
        var url = "postgres://marblerun@127.0.0.1:\(port)/\(database)"
        if let sslmode { url += "?sslmode=\(sslmode)&sslrootcert=\(caFile)" }
        return url
    }

    /// Starts the server and waits, with a deadline, until it accepts connections.
    public func start() async throws {
        let process = Process()
        let serverUser = getuid() == 0
        var arguments = [
            binaries.appendingPathComponent("postgres").path, "-D", dataDirectory.path, "-p", "\(port)", "-k",
            dataDirectory.path, "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200",
        ]
        if tls { arguments += ["-c", "ssl=on", "-c", "ssl_cert_file=server.crt", "-c", "ssl_key_file=server.key"] }
        // setpriv execs (no fork), so the process we hold is the postmaster itself.
        process.executableURL = URL(fileURLWithPath: serverUser ? "/usr/bin/setpriv" : arguments[0])
        process.arguments =
            serverUser
            ? ["--reuid=postgres", "--regid=postgres", "--init-groups", "--"] + arguments : Array(arguments.dropFirst())
        if !FileManager.default.fileExists(atPath: logFile.path) {
            _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        }
        let output = try FileHandle(forWritingTo: logFile)
        try output.seekToEnd()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        self.process.withLock { $0 = process }
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let ready = try await ProcessRunner.run(
                binaries.appendingPathComponent("pg_isready"), ["-h", "127.0.0.1", "-p", "\(port)", "-q"])
            if ready.status == 0 { return }
            guard process.isRunning else {
                throw Failure(description: "PostgreSQL stopped at start: \(log(tail: 20))")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw Failure(description: "PostgreSQL did not accept connections in 60 s: \(log(tail: 20))")
    }

    /// Stops the server: a fast shutdown (SIGINT), or SIGKILL with `kill`; waits for the exit.
    public func stop(kill: Bool = false) async {
        guard
            let process = process.withLock({ current -> Process? in
                defer { current = nil }
                return current
            })
        else { return }
        Glibc.kill(process.processIdentifier, kill ? SIGKILL : SIGINT)
        while process.isRunning { try? await Task.sleep(for: .milliseconds(20)) }
    }

    /// Creates a database and returns its URL.
    public func createDatabase(_ name: String, sslmode: String? = nil) async throws -> String {
        let result = try await ProcessRunner.run(
            binaries.appendingPathComponent("createdb"), ["-h", "127.0.0.1", "-p", "\(port)", "-U", "marblerun", name])
        guard result.status == 0 else { throw Failure(description: "createdb \(name) failed: \(result.stderr)") }
        return url(database: name, sslmode: sslmode)
    }

    /// Runs SQL in `database` with psql and returns what it prints, unaligned and without headers.
    public func sql(_ statement: String, database: String) async throws -> String {
        let result = try await ProcessRunner.run(
            binaries.appendingPathComponent("psql"),
            [
                "-h", "127.0.0.1", "-p", "\(port)", "-U", "marblerun", "-d", database, "-v", "ON_ERROR_STOP=1", "-Atc",
                statement,
            ])
        guard result.status == 0 else { throw Failure(description: "psql failed: \(result.stderr.suffix(500))") }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs `body` with a started server, which is removed afterwards whether `body` succeeded or not.
    public static func with<T>(tls: Bool = false, _ body: (PostgresServer) async throws -> T) async throws -> T {
        let server = try await PostgresServer(tls: tls)
        do {
            try await server.start()
            let result = try await body(server)
            await server.remove()
            return result
        } catch {
            await server.remove()
            throw error
        }
    }

    /// Stops the server and removes its files.
    public func remove() async {
        await stop()
        try? FileManager.default.removeItem(at: directory)
    }

    public func log(tail lines: Int) -> String {
        let text = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    private func asServerUser(_ command: [String], asRoot: Bool = false) async throws {
        let result: ProcessRunner.Result
        if getuid() == 0 && !asRoot {
            result = try await ProcessRunner.run(
                URL(fileURLWithPath: "/usr/bin/setpriv"),
                ["--reuid=postgres", "--regid=postgres", "--init-groups", "--"] + command)
        } else if getuid() == 0 || !asRoot {
            result = try await ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/env"), command)
        } else {
            return  // not root: the directory is ours already
        }
        guard result.status == 0 else {
            throw Failure(description: "\(command.first ?? "") failed (\(result.status)): \(result.stderr.suffix(500))")
        }
    }

    /// The newest `/usr/lib/postgresql/N/bin` with `postgres` in it, or `MARBLERUN_PG_BIN`.
    static func findBinaries() -> URL? {
        if let path = ProcessInfo.processInfo.environment["MARBLERUN_PG_BIN"] { return URL(fileURLWithPath: path) }
        let root = URL(fileURLWithPath: "/usr/lib/postgresql")
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        return versions.compactMap(Int.init).sorted().reversed().lazy.map {
            root.appendingPathComponent("\($0)/bin")
        }.first { FileManager.default.isExecutableFile(atPath: $0.appendingPathComponent("postgres").path) }
    }
}
