import Attestation
import AttestationPCCS
import CoordinatorCore
import Foundation
import Logging
import X509

/// A `host:port` to listen on, written as Go does (`:4433` listens on every interface).
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`, `:port` or `[v6]:port`.
    public init(parsing text: String) throws(ServerConfigurationError) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65_535).contains(port)
        else {
            throw ServerConfigurationError("\"\(text)\" is not an address: write host:port or :port")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.init(host: host.isEmpty ? "0.0.0.0" : host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A setting that cannot be used, with what to change.
public struct ServerConfigurationError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Everything the `coordinator` executable is configured with (flags or MarbleRun's
/// `EDG_*` environment names).
public struct ServerConfiguration: Sendable {
    /// The client REST API (HTTPS).
    public var clientAddress = ListenAddress(host: "0.0.0.0", port: 4433)
    /// The marble mesh API (gRPC, mutual TLS).
    public var meshAddress = ListenAddress(host: "0.0.0.0", port: 2001)
    /// Prometheus `/metrics` over plain HTTP; off when nil.
    public var prometheusAddress: ListenAddress?
    /// Where the sealed state (`coordinator.sqlite`) and, in simulation, the sealing key live.
    public var sealDirectory = URL(fileURLWithPath: "marblerun-coordinator-data")
    /// A PostgreSQL URL (`postgres://…`) shared by Coordinator replicas; nil keeps the embedded
    /// SQLite store in the seal directory. The database only ever holds ciphertext and versions.
    public var postgresURL: String?
    /// Running replicas' client APIs (HOST:PORT) to obtain the data key from when this
    /// replica's sealer cannot unseal it.
    public var peers: [String] = []
    /// The simulated SGX platform directory; nil means a real enclave.
    public var simulationDirectory: URL?
    /// Gramine's attestation interface (`attestation_type`, `user_report_data`, `quote`,
    /// `keys/`), used without simulation.
    public var gramineDirectory = GramineQuoteIssuer.defaultDirectory
    /// A root CA to check quotes and collateral against instead of Intel's SGX Root CA (test
    /// platforms only); nil: Intel's.
    public var sgxRootCA: Certificate?
    /// The PCCS or Intel PCS collateral is fetched from; nil in simulation: the simulated
    /// platform's own collateral.
    public var collateralService: QCNLConfiguration?
    /// A manifest set at start-up when none is set yet.
    public var startupManifest: URL?
    /// Names in the root certificate (used when a new root is created).
    public var dnsNames = ["localhost"]
    public var curve = CACurve.p256
    public var strictManifest = false
    /// The level at which the client API logs the requests it refuses (4xx answers: a bad body,
    /// a missing certificate, a forbidden call); server errors (5xx) are always errors.
    public var httpErrorLogLevel = Logger.Level.debug
    /// Largest request body the REST API reads; a base64 manifest of the 8 MiB limit fits.
    public var maximumBodySize = 12 << 20
    /// Largest gRPC request (a quote, a CSR and two names).
    public var maximumActivationRequestSize = 1 << 20
    /// How long a connection to either API may stay idle — including one whose TLS handshake
    /// never ends — before it is closed; without it stalled connections were kept for ever.
    public var connectionTimeout: Duration = .seconds(30)
    /// Open connections each listener (client API, mesh) keeps at most; more are closed as soon
    /// as they are accepted, counted and logged (`ConnectionLimit`).
    public var maximumConnections = 4096

    public init() {}

    public static let databaseName = "coordinator.sqlite"
    public var databasePath: String { sealDirectory.appendingPathComponent(Self.databaseName).path }
    /// Written once the SQLite database holds a state (see `CoordinatorServer`).
    public var stateMarkerPath: String { sealDirectory.appendingPathComponent("coordinator.state-held").path }
}
