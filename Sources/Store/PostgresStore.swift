import Foundation
import Logging
import NIOCore
import NIOSSL
import PostgresNIO
import Synchronization

/// The shared store for Coordinator replicas: one PostgreSQL table of keys, ciphertext and
/// versions. Every commit is one transaction whose writes are conditional on the versions the
/// caller read (`UPDATE … WHERE version = $n`), so two replicas writing the same key cannot
/// both succeed: the second gets ``StoreError/Code/conflict`` and nothing of its commit is applied.
public final class PostgresStore: StateStore {
    /// Where and how to connect, from a URL such as
    /// `postgres://user:password@host:5432/database?sslmode=require&sslrootcert=ca.pem`.
    public struct Location: Sendable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public var username: String
        public var password: String?
        public var database: String?
        /// `disable` (the default), `require` or `verify-ca` (TLS, the server's certificate checked
        /// against `sslrootcert` or the system roots) or `verify-full` (the same, with the host name
        /// checked). Unlike libpq, `require` checks the certificate; `prefer`/`allow`, which would
        /// accept an unverified server, are refused.
        public var tlsMode: String
        public var rootCertificate: String?

        /// Parses a `postgres://` or `postgresql://` URL; the password never appears in errors.
        public init(url text: String) throws(StoreError) {
            guard let url = URLComponents(string: text), ["postgres", "postgresql"].contains(url.scheme ?? ""),
                let host = url.host, !host.isEmpty
            else {
                throw StoreError(
                    .unavailable, "the database URL must look like postgres://USER:PASSWORD@HOST:PORT/DATABASE")
            }
            self.host = host
            port = url.port ?? 5432
            username = url.user ?? "postgres"
            password = url.password
            let path = url.path.hasPrefix("/") ? String(url.path.dropFirst()) : url.path
            database = path.isEmpty ? nil : path
            var mode = "disable"
            for item in url.queryItems ?? [] {
                switch item.name {
                case "sslmode": mode = item.value ?? ""
                case "sslrootcert": rootCertificate = item.value
                default:
                    throw StoreError(.unavailable, "the database URL has an unknown parameter \(item.name.prefix(40))")
                }
            }
            guard ["disable", "require", "verify-ca", "verify-full"].contains(mode) else {
                throw StoreError(
                    .unavailable,
                    "sslmode=\(mode.prefix(20)): use disable, require, verify-ca or verify-full (TLS is always verified)"
                )
            }
            tlsMode = mode
        }

        /// The URL without its password, for logs and errors.
        public var description: String {
            "postgres://\(username)@\(host):\(port)/\(database ?? "") (TLS: \(tlsMode))"
        }

        func configuration() throws(StoreError) -> PostgresClient.Configuration {
            var tls: PostgresClient.Configuration.TLS = .disable
            if tlsMode != "disable" {
                var context = TLSConfiguration.makeClientConfiguration()
                context.minimumTLSVersion = .tlsv12
                if let rootCertificate {
                    do {
                        context.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(rootCertificate))
                    } catch {
                        throw StoreError(.unavailable, "cannot read the database CA certificate \(rootCertificate)")
                    }
                }
                // libpq's require checks no certificate; we always check it, and the name with verify-full.
                context.certificateVerification = tlsMode == "verify-full" ? .fullVerification : .noHostnameVerification
                tls = .require(context)
            }
            var configuration = PostgresClient.Configuration(
                host: host, port: port, username: username, password: password, database: database, tls: tls)
            configuration.options.connectTimeout = .seconds(5)
            configuration.options.maximumConnections = 8
            return configuration
        }
    }

    public let location: Location
    /// How long one read or commit may take before it is reported as unavailable.
    public let timeout: Duration
    private let client: PostgresClient
    private let running: Task<Void, Never>
    private let logger: Logger

    private init(
        location: Location, timeout: Duration, client: PostgresClient, running: Task<Void, Never>, logger: Logger
    ) {
        self.location = location
        self.timeout = timeout
        self.client = client
        self.running = running
        self.logger = logger
    }

    /// Connects and creates the table if it does not exist yet.
    public static func open(
        url: String, timeout: Duration = .seconds(10), logger: Logger = PostgresStore.defaultLogger
    ) async throws(StoreError) -> PostgresStore {
        let location = try Location(url: url)
        let client = PostgresClient(configuration: try location.configuration(), backgroundLogger: logger)
        let running = Task { await client.run() }
        let store = PostgresStore(
            location: location, timeout: timeout, client: client, running: running, logger: logger)
        do {
            try await store.prepare()
        } catch {
            await store.close()
            throw error
        }
        return store
    }

    /// The pool's own messages (each failed connection attempt) at warning level and above.
    public static var defaultLogger: Logger {
        var logger = Logger(label: "store.postgres")
        logger.logLevel = .warning
        return logger
    }

    private func prepare() async throws(StoreError) {
        try await run("create the state table") { client, logger in
            try await client.withTransaction(logger: logger) { connection in
                // Replicas may start together: serialise the creation.
                try await connection.query("SELECT pg_advisory_xact_lock(7305126)", logger: logger)
                try await connection.query(
                    """
                    CREATE TABLE IF NOT EXISTS marblerun_state (
                        key TEXT PRIMARY KEY, value BYTEA NOT NULL, version BIGINT NOT NULL)
                    """, logger: logger)
                // Listings are key ranges in byte order; the primary key's index has the database's
                // collation, which orders otherwise (a listing was a scan of every record).
                try await connection.query(
                    #"CREATE INDEX IF NOT EXISTS marblerun_state_key_bytes ON marblerun_state (key COLLATE "C")"#,
                    logger: logger)
            }
        }
    }

    public func read(_ key: String) async throws(StoreError) -> StoredValue? {
        try await run("read \(key)") { client, logger in
            let rows = try await client.query(
                "SELECT value, version FROM marblerun_state WHERE key = \(key)", logger: logger)
            for try await (value, version) in rows.decode((ByteBuffer, Int64).self) {
                return StoredValue(bytes: Array(value.readableBytesView), version: version)
            }
            return nil
        }
    }

    public func keys(withPrefix prefix: String) async throws(StoreError) -> [String] {
        try await run("list \(prefix)*") { client, logger in
            let rows: PostgresRowSequence
            if let upper = upperBound(ofPrefix: prefix) {
                rows = try await client.query(
                    #"SELECT key FROM marblerun_state WHERE key COLLATE "C" >= \#(prefix) AND key COLLATE "C" < \#(upper) ORDER BY key COLLATE "C""#,
                    logger: logger)
            } else {
                rows = try await client.query(
                    #"SELECT key FROM marblerun_state WHERE left(key, \#(Int32(prefix.unicodeScalars.count))) = \#(prefix) ORDER BY key COLLATE "C""#,
                    logger: logger)
            }
            var keys: [String] = []
            for try await key in rows.decode(String.self) { keys.append(key) }
            return keys
        }
    }

    public func commit(_ writes: [StoreWrite]) async throws(StoreError) {
        guard !writes.isEmpty else { return }
        try await run("commit") { client, logger in
            try await client.withTransaction(logger: logger) { connection in
                for write in writes {
                    let applied: Bool
                    switch (write.value, write.expectedVersion) {
                    case _ where write.isCheck:
                        // FOR SHARE: a concurrent writer of the row waits for this transaction.
                        let rows = try await connection.query(
                            "SELECT version FROM marblerun_state WHERE key = \(write.key) FOR SHARE", logger: logger)
                        var version: Int64?
                        for try await (stored) in rows.decode(Int64.self) { version = stored }
                        applied = version == write.expectedVersion
                    case (let value?, nil):
                        applied = try await Self.changed(
                            connection.query(
                                """
                                INSERT INTO marblerun_state (key, value, version) VALUES (\(write.key), \(ByteBuffer(bytes: value)), 1)
                                ON CONFLICT (key) DO NOTHING RETURNING version
                                """, logger: logger))
                    case (let value?, let version?):
                        applied = try await Self.changed(
                            connection.query(
                                """
                                UPDATE marblerun_state SET value = \(ByteBuffer(bytes: value)), version = version + 1
                                WHERE key = \(write.key) AND version = \(version) RETURNING version
                                """, logger: logger))
                    case (nil, let version?):
                        applied = try await Self.changed(
                            connection.query(
                                "DELETE FROM marblerun_state WHERE key = \(write.key) AND version = \(version) RETURNING version",
                                logger: logger))
                    case (nil, nil):
                        // Deleting what must not exist: it must still not exist.
                        applied = try await !Self.changed(
                            connection.query(
                                "SELECT version FROM marblerun_state WHERE key = \(write.key) FOR UPDATE",
                                logger: logger))
                    }
                    guard applied else { throw StoreError(.conflict, "\(write.key) changed since it was read") }
                }
            }
        }
    }

    private static func changed(_ rows: PostgresRowSequence) async throws -> Bool {
        var any = false
        for try await _ in rows { any = true }
        return any
    }

    /// Runs `body` within the operation timeout, mapping every failure but a conflict to
    /// ``StoreError/Code/unavailable`` with a message that names the database (never its
    /// password) and what was being done. The pool retries connections in the background, so
    /// an unreachable database would otherwise make callers wait forever.
    private func run<T: Sendable>(
        _ what: String, _ body: @escaping @Sendable (PostgresClient, Logger) async throws -> T
    ) async throws(StoreError) -> T {
        let (client, logger, timeout, location) = (self.client, self.logger, self.timeout, self.location)
        do {
            // Not a task group: a group waits for the body, and the pool may not give up a
            // connection attempt when cancelled. The body is cancelled and left to end by itself.
            return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                let outcome = OneShot(continuation)
                let work = Task {
                    do {
                        outcome.resume(with: .success(try await body(client, logger)))
                    } catch {
                        outcome.resume(with: .failure(error))
                    }
                }
                Task {
                    try? await Task.sleep(for: timeout)
                    let timedOut = StoreError(
                        .unavailable,
                        "the database \(location) did not answer within \(timeout) to \(what); a commit's outcome is unknown until it is read back"
                    )
                    if outcome.resume(with: .failure(timedOut)) { work.cancel() }
                }
            }
        } catch let error as StoreError {
            throw error
        } catch let error as PostgresTransactionError {
            if let conflict = error.closureError as? StoreError { throw conflict }
            // A failed COMMIT may or may not have been applied; anything before it was rolled back.
            let outcome =
                error.commitError != nil ? "its outcome is unknown until it is read back" : "nothing was changed"
            throw StoreError(
                .unavailable, "the database \(location) failed to \(what): \(Self.reason(error)); \(outcome)")
        } catch {
            throw StoreError(.unavailable, "the database \(location) failed to \(what): \(Self.reason(error))")
        }
    }

    /// Resumes a continuation once: the first of the work and the timeout wins.
    private final class OneShot<T: Sendable>: Sendable {
        private let continuation: Mutex<CheckedContinuation<T, any Error>?>

        init(_ continuation: CheckedContinuation<T, any Error>) {
            self.continuation = Mutex(continuation)
        }

        @discardableResult
        func resume(with result: Result<T, any Error>) -> Bool {
            guard let continuation = continuation.withLock({ $0.take() }) else { return false }
            continuation.resume(with: result)
            return true
        }
    }

    /// PSQLError's description hides the server's message on purpose; show it, not the query binds.
    static func reason(_ error: any Error) -> String {
        if let error = error as? PostgresTransactionError {
            return reason(error.closureError ?? error.beginError ?? error.commitError ?? error.rollbackError ?? error)
        }
        guard let error = error as? PSQLError else { return "\(error)" }
        if let message = error.serverInfo?[.message] { return "\(error.code): \(message)" }
        if let underlying = error.underlying { return "\(error.code): \(underlying)" }
        return "\(error.code)"
    }

    public func close() async {
        running.cancel()
        await running.value
    }
}
