import ArgumentParser
import Attestation
import AttestationPCCS
import CoordinatorCore
import CoordinatorServer
import Foundation
import Logging
import Metrics
import Prometheus

/// `coordinator`: runs the MarbleRun-compatible Coordinator. Every flag falls back to
/// MarbleRun's environment name, then to MarbleRun's default.
@main
struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Run the Coordinator: the attesting CA and secret store of a confidential app.",
        discussion: """
            Each flag can also be set with the environment variable in brackets (MarbleRun's names); \
            a flag wins over the environment.

            Simulation mode (--simulation DIR) runs without SGX: a simulated platform in DIR (created \
            if absent) issues and verifies quotes, and the sealing key is a plain file in the seal \
            directory. It is for development and tests only.

            Example:
              coordinator --simulation sim --seal-dir data --client-addr localhost:4433
            """)

    @Option(help: "Client REST API address (EDG_COORDINATOR_CLIENT_ADDR).")
    var clientAddr: String?
    @Option(help: "Marble mesh gRPC address (EDG_COORDINATOR_MESH_ADDR).")
    var meshAddr: String?
    @Option(help: "Directory of the sealed state (EDG_COORDINATOR_SEAL_DIR).")
    var sealDir: String?
    @Option(help: "State store: sqlite (embedded, in the seal directory) or postgres (EDG_STORE_BACKEND).")
    var storeBackend: String?

    @Option(
        help:
            "PostgreSQL URL for the postgres backend, e.g. postgres://user:pw@db:5432/marblerun?sslmode=verify-full&sslrootcert=ca.pem (EDG_STORE_URL)."
    )
    var storeURL: String?

    @Option(
        help:
            "A running replica's client API (HOST:PORT) to obtain the data key from, by mutual attestation; repeatable (EDG_COORDINATOR_PEERS, comma-separated)."
    )
    var peer: [String] = []

    @Option(help: "Prometheus /metrics address; off if unset (EDG_COORDINATOR_PROMETHEUS_ADDR).")
    var prometheusAddr: String?
    @Option(help: "Manifest file set at start when none is set (EDG_STARTUP_MANIFEST).")
    var startupManifest: String?
    @Option(help: "Comma-separated DNS names or IPs of the root certificate (EDG_COORDINATOR_DNS_NAMES).")
    var dnsNames: String?
    @Option(help: "Simulated SGX platform directory, created if absent (EDG_COORDINATOR_SIMULATION).")
    var simulation: String?
    @Option(
        help: """
            PCCS or Intel PCS to fetch collateral from, e.g. https://pccs.example:8081/sgx/certification/v4/ \
            (EDG_COORDINATOR_PCCS). Replaces the URL of the QCNL configuration file.
            """)
    var pccs: String?
    @Option(
        help: """
            Intel QCNL configuration file naming the collateral service (pccs_url, collateral_service, \
            use_secure_cert), default \(QCNLConfiguration.defaultPath) when it exists, else Intel's PCS \
            (QCNL_CONF_PATH). In simulation the simulated platform's collateral is used unless this or \
            --pccs is given.
            """)
    var qcnlConfig: String?
    @Option(
        help: """
            Gramine's attestation directory, used without --simulation (EDG_COORDINATOR_GRAMINE_DIR; default \
            /dev/attestation, where attestation_type must say dcap).
            """)
    var gramineDir: String?
    @Option(
        help: """
            PEM root CA that quotes and collateral must chain to instead of Intel's SGX Root CA: for test \
            platforms only (EDG_COORDINATOR_SGX_ROOT_CA).
            """)
    var sgxRootCA: String?
    @Option(help: "Curve of the CA keys: P-256 or P-384 (EDG_COORDINATOR_CURVE).")
    var curve: String?
    @Flag(help: "Refuse manifests with unknown fields instead of warning.")
    var strictManifest = false
    @Option(
        help:
            "Log format: text, or json for one JSON object per line with stable keys (EDG_LOG_FORMAT)."
    )
    var logFormat: String?

    @Option(
        help:
            "Level at which refused client API requests (4xx) are logged (EDG_HTTP_ERROR_LOG_LEVEL, default debug)."
    )
    var httpErrorLogLevel: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error (EDG_LOG_LEVEL; EDG_DEBUG_LOGGING=1: debug).")
    var logLevel: String?
    @Option(
        help:
            "Seconds a connection may stay idle, or stalled before its TLS handshake ends, before it is closed, 1–3600 (EDG_COORDINATOR_CONNECTION_TIMEOUT)."
    )
    var connectionTimeout: String?
    @Option(
        help:
            "Open connections each listener (client API, mesh) accepts at most; more are closed at once, counted in coordinator_connections_refused_total and logged, 1–1000000 (EDG_COORDINATOR_MAX_CONNECTIONS, default 4096)."
    )
    var maxConnections: String?

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        func setting(_ flag: String?, _ name: String) -> String? {
            flag ?? environment[name].flatMap { $0.isEmpty ? nil : $0 }
        }
        // MarbleRun's EDG_DEBUG_LOGGING turns on debug output unless a level is named.
        let debugLogging = ["1", "true", "yes", "on"].contains(environment["EDG_DEBUG_LOGGING"]?.lowercased() ?? "")
        let level = setting(logLevel, "EDG_LOG_LEVEL") ?? (debugLogging ? "debug" : "info")
        guard let logLevel = Logger.Level(rawValue: level) else {
            throw ValidationError("unknown log level \"\(level)\"")
        }
        switch setting(logFormat, "EDG_LOG_FORMAT") ?? "text" {
        case "json":
            LoggingSystem.bootstrap { label in JSONLogHandler(label: label, level: logLevel) }
        case "text", "console":
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = logLevel
                return handler
            }
        case let other:
            throw ValidationError("unknown log format \"\(other.prefix(20))\": use json or text")
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

        var configuration = ServerConfiguration()
        do {
            if let text = setting(clientAddr, "EDG_COORDINATOR_CLIENT_ADDR") {
                configuration.clientAddress = try ListenAddress(parsing: text)
            }
            if let text = setting(meshAddr, "EDG_COORDINATOR_MESH_ADDR") {
                configuration.meshAddress = try ListenAddress(parsing: text)
            }
            if let text = setting(prometheusAddr, "EDG_COORDINATOR_PROMETHEUS_ADDR") {
                configuration.prometheusAddress = try ListenAddress(parsing: text)
            }
        } catch {
            throw ValidationError(error.message)
        }
        if let path = setting(sealDir, "EDG_COORDINATOR_SEAL_DIR") {
            configuration.sealDirectory = URL(fileURLWithPath: path)
        }
        switch setting(storeBackend, "EDG_STORE_BACKEND") ?? "sqlite" {
        case "sqlite":
            guard peer.isEmpty, environment["EDG_COORDINATOR_PEERS"]?.isEmpty ?? true else {
                throw ValidationError(
                    "--peer (EDG_COORDINATOR_PEERS) is for replicas: use it with --store-backend postgres")
            }
        case "postgres", "postgresql":
            guard let url = setting(storeURL, "EDG_STORE_URL") else {
                throw ValidationError(
                    "the postgres store needs --store-url or EDG_STORE_URL (postgres://USER@HOST:PORT/DATABASE)")
            }
            configuration.postgresURL = url
            configuration.peers =
                peer.isEmpty
                ? (environment["EDG_COORDINATOR_PEERS"] ?? "").split(separator: ",").map {
                    $0.trimmingCharacters(in: .whitespaces)
                }.filter { !$0.isEmpty } : peer
        case let other:
            throw ValidationError("store backend \(other.prefix(20)): use sqlite or postgres")
        }
        configuration.startupManifest = setting(startupManifest, "EDG_STARTUP_MANIFEST").map(URL.init(fileURLWithPath:))
        configuration.simulationDirectory = setting(simulation, "EDG_COORDINATOR_SIMULATION").map(
            URL.init(fileURLWithPath:))
        // MarbleRun's OE_SIMULATION=1: simulation, with the platform kept in the seal directory.
        let oeSimulation = environment["OE_SIMULATION"] == "1"
        if oeSimulation, configuration.simulationDirectory == nil {
            configuration.simulationDirectory = configuration.sealDirectory.appendingPathComponent("simulation")
        }
        if let text = setting(httpErrorLogLevel, "EDG_HTTP_ERROR_LOG_LEVEL") {
            guard let value = Logger.Level(rawValue: text.lowercased()) else {
                throw ValidationError(
                    "unknown HTTP error log level \"\(text.prefix(20))\": use trace, debug, info, notice, warning or error"
                )
            }
            configuration.httpErrorLogLevel = value
        }
        if let path = setting(gramineDir, "EDG_COORDINATOR_GRAMINE_DIR") {
            configuration.gramineDirectory = URL(fileURLWithPath: path)
        }
        if let path = setting(sgxRootCA, "EDG_COORDINATOR_SGX_ROOT_CA") {
            do {
                configuration.sgxRootCA = try TrustAnchors.root(pemFile: path)
            } catch {
                throw ValidationError(error.message)
            }
        }
        do {
            configuration.collateralService = try QCNLConfiguration.resolve(
                url: setting(pccs, "EDG_COORDINATOR_PCCS"), path: setting(qcnlConfig, "QCNL_CONF_PATH"),
                defaults: configuration.simulationDirectory == nil)
        } catch {
            throw ValidationError(error.message)
        }
        if let names = setting(dnsNames, "EDG_COORDINATOR_DNS_NAMES") {
            configuration.dnsNames = names.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }
        }
        if let text = setting(curve, "EDG_COORDINATOR_CURVE") {
            guard let value = CACurve(rawValue: text.uppercased()) else {
                throw ValidationError("unknown curve \"\(text)\": use P-256 or P-384")
            }
            configuration.curve = value
        }
        configuration.strictManifest = strictManifest
        if let text = setting(connectionTimeout, "EDG_COORDINATOR_CONNECTION_TIMEOUT") {
            guard let seconds = Int(text), (1...3600).contains(seconds) else {
                throw ValidationError("connection timeout \(text.prefix(20)): give whole seconds, 1–3600")
            }
            configuration.connectionTimeout = .seconds(seconds)
        }
        if let text = setting(maxConnections, "EDG_COORDINATOR_MAX_CONNECTIONS") {
            guard let count = Int(text), (1...1_000_000).contains(count) else {
                throw ValidationError("maximum connections \(text.prefix(20)): give a whole number, 1–1000000")
            }
            configuration.maximumConnections = count
        }

        let logger = Logger(label: "coordinator")
        if oeSimulation {
            logger.warning(
                "OE_SIMULATION=1: simulation mode (no enclave, no security); the simulated platform is kept in the seal directory",
                metadata: ["directory": "\(configuration.simulationDirectory?.path ?? "")"])
        }
        do {
            try await CoordinatorServer(configuration: configuration, logger: logger).run(metrics: registry)
        } catch {
            logger.critical("the Coordinator cannot run", metadata: ["reason": "\(Self.describe(error))"])
            throw ExitCode.failure
        }
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case let error as CoordinatorError: return error.message
        case let error as ServerConfigurationError: return error.message
        case let error as CustomStringConvertible: return error.description
        default: return "\(error)"
        }
    }
}
