import AsyncHTTPClient
import Attestation
import AttestationPCCS
import CoordinatorCore
import Crypto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import Manifest
import Metrics
import NIOCore
import NIOSSL
import Prometheus
import ServiceLifecycle
import Store
import X509

/// The Coordinator process: the core on its sealed store, the client REST API, the marble mesh
/// API and Prometheus metrics, run as one service group that shuts down gracefully on SIGTERM
/// or SIGINT.
public struct CoordinatorServer: Sendable {
    public let configuration: ServerConfiguration
    public let logger: Logger
    /// Both listeners' closed connections, for returning their memory after a burst.
    let heapTrimmer: HeapTrimmer

    public init(configuration: ServerConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        heapTrimmer = HeapTrimmer(logger: logger)
    }

    /// Runs until a termination signal; throws when start-up is impossible, saying why.
    public func run(metrics registry: PrometheusCollectorRegistry? = nil) async throws {
        let client = configuration.collateralService.map { PCCSCollateralProvider.makeClient(for: $0) }
        do {
            try await run(metrics: registry, collateralClient: client)
        } catch {
            try? await client?.shutdown()
            throw error
        }
        try? await client?.shutdown()
    }

    private func run(metrics registry: PrometheusCollectorRegistry?, collateralClient: HTTPClient?) async throws {
        // Read before anything is created: did this seal directory hold a state already?
        let heldState = configuration.postgresURL == nil && sealDirectoryHeldState
        let environment = try enclaveEnvironment(collateralClient: collateralClient)
        let store = try await openStore()
        do {
            var core = Coordinator.Configuration()
            if heldState {
                core.existingState =
                    "the state database \(configuration.databasePath) (this seal directory held a Coordinator state: \(configuration.stateMarkerPath) exists)"
            }
            core.curve = configuration.curve
            core.dnsNames = configuration.dnsNames
            core.strictManifest = configuration.strictManifest
            core.sharedStore = configuration.postgresURL != nil
            var dataKeySource: Coordinator.DataKeySource?
            // In an enclave the Coordinator checks its own quote first (a wrong collateral service
            // or root shows at once); in simulation only replicas need it (their identity).
            let own =
                configuration.simulationDirectory == nil || core.sharedStore ? try await ownQuote(environment) : nil
            if core.sharedStore, let own {
                let identity = PackagePolicy(debug: own.debug, uniqueID: own.uniqueID)
                core.replicaIdentity = identity
                let client = ReplicaKeyClient(
                    peers: configuration.peers, identity: identity, quoteIssuer: environment.quoteIssuer,
                    verifier: environment.verifier, collateralProvider: environment.collateral, logger: logger)
                dataKeySource = { try await client.fetch() }
            }
            // Recovery mode ends either in a recovered state, which then opens normally, or in shutdown.
            while true {
                let opening = try await Coordinator.open(
                    configuration: core, verifier: environment.verifier, collateralProvider: environment.collateral,
                    store: store, sealer: environment.sealer, dataKeySource: dataKeySource)
                switch opening {
                case .ready(let coordinator):
                    try markStateHeld()
                    try await serve(coordinator, quoteIssuer: environment.quoteIssuer, registry: registry)
                    await store.close()
                    return
                case .recovery(let recovery):
                    var fresh = core
                    fresh.existingState = nil
                    let overwrite: @Sendable ([UInt8]) async throws -> Coordinator.ManifestResult = {
                        [core = fresh] manifest in
                        try await recovery.discardState()
                        // Recovery mode ends once the new state is set up (or failed to be), never
                        // while a second Coordinator could still be writing it.
                        do {
                            let fresh = try await Coordinator.start(
                                configuration: core, verifier: environment.verifier,
                                collateralProvider: environment.collateral, store: store, sealer: environment.sealer)
                            let result = try await fresh.setManifest(manifest)
                            await recovery.finish()
                            return result
                        } catch {
                            await recovery.finish()
                            throw error
                        }
                    }
                    guard try await serveRecovery(recovery, quoteIssuer: environment.quoteIssuer, overwrite: overwrite)
                    else {
                        await store.close()
                        return
                    }
                    logger.notice("the sealed state is recovered; starting normally")
                }
            }
        } catch {
            await store.close()
            throw error
        }
    }

    private func serve(_ coordinator: Coordinator, quoteIssuer: any QuoteIssuer, registry: PrometheusCollectorRegistry?)
        async throws
    {
        let pki = await coordinator.pki
        let state = await coordinator.state
        let fingerprint = await coordinator.manifest?.fingerprint ?? "none"
        logger.notice(
            "Coordinator state loaded",
            metadata: ["state": "\(state.rawValue)", "root": "\(pki.root.subject)", "manifest": "\(fingerprint)"])
        try await setStartupManifest(coordinator)

        let rootDER = try pki.root.derBytes()
        let keyDER = pki.rootKey.derRepresentation
        let api = ClientAPI(
            coordinator: coordinator, quoteIssuer: quoteIssuer, maximumBodySize: configuration.maximumBodySize,
            logger: logger, refusalLogLevel: configuration.httpErrorLogLevel)
        let client = try clientApplication(api.router(), certificate: rootDER, key: keyDER)

        var transportConfig = Self.meshTransportConfiguration(configuration)
        let idleTimeout = configuration.connectionTimeout
        let meshLimit = ConnectionLimit(
            listener: "mesh", maximum: configuration.maximumConnections, logger: logger, trimmer: heapTrimmer)
        transportConfig.channelDebuggingCallbacks.onAcceptTCPConnection = { channel in
            guard meshLimit.admit(channel) else { return channel.eventLoop.makeFailedFuture(ConnectionLimitReached()) }
            return IdleConnectionCloser.install(on: channel, timeout: idleTimeout)
        }
        let transport = HTTP2ServerTransport.Posix(
            address: try .listening(on: configuration.meshAddress),
            transportSecurity: .mTLS(
                certificateChain: [.bytes(rootDER, format: .der)], privateKey: .bytes(keyDER, format: .der)
            ) { config in
                // Marbles present self-signed certificates: the quote, not a CA, vouches for them.
                config.customVerificationCallback = { certificates, promise in
                    promise.succeed(.certificateVerified(VerificationMetadata(ValidatedCertificateChain(certificates))))
                }
            },
            config: transportConfig)
        let activationMetrics = ActivationMetrics()
        let mesh = GRPCService(
            server: GRPCServer(
                transport: transport,
                services: [MeshService(coordinator: coordinator, logger: logger)]),
            transport: transport, address: configuration.meshAddress, logger: logger)

        var services: [any Service] = [client, mesh, heapTrimmer]
        if let registry, let address = configuration.prometheusAddress {
            services.append(MetricsEndpoint.application(registry: registry, address: address, logger: logger))
        }
        services.append(StateGauge(coordinator: coordinator, activationMetrics: activationMetrics))
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
        logger.notice("Coordinator stopped")
    }

    /// HTTP/1.1 header limits of the client API: no request of the API needs more than a
    /// client certificate's worth of headers.
    static let maximumHeaderFieldSize = 16 << 10
    static let maximumHeaderListSize = 64 << 10
    static let maximumHeaderFieldCount = 100
    /// Concurrent HTTP/2 streams a mesh connection may open.
    static let maximumConcurrentStreams = 16

    /// The mesh gRPC transport's settings (TLS and the per-connection handlers are added by the caller).
    ///
    /// No `maxIdleTime`: in grpc-swift-nio-transport 2.9.2 `ServerConnectionManagementHandler`'s
    /// `channelInactive` clears `maxAgeTimerHandler` where it means `maxIdleTimerHandler`, and that
    /// timer holds the handler strongly, so every connection's handler, timer and stream set stayed
    /// in memory: about 450 bytes per activation (the soak in BENCHMARKS.md grew 55 → 108 MiB in
    /// 10 minutes). ``IdleConnectionCloser`` closes idle connections instead.
    static func meshTransportConfiguration(_ configuration: ServerConfiguration) -> HTTP2ServerTransport.Posix.Config {
        var transportConfig = HTTP2ServerTransport.Posix.Config.defaults
        transportConfig.rpc.maxRequestPayloadSize = configuration.maximumActivationRequestSize
        // A marble needs one stream at a time; a peer may not open more than a few.
        transportConfig.http2.maxConcurrentStreams = maximumConcurrentStreams
        return transportConfig
    }

    /// The client API's HTTPS server: TLS 1.2+, a client certificate requested but optional
    /// (users are matched to the manifest byte for byte, not by a CA).
    func clientApplication(_ router: Router<ClientRequestContext>, certificate: [UInt8], key: [UInt8]) throws
        -> some Service
    {
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: certificate, format: .der))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: key, format: .der)))
        tls.minimumTLSVersion = .tlsv12
        tls.certificateVerification = .optionalVerification
        let http = HTTP1Channel.Configuration(
            additionalChannelHandlers: [ParserErrorEnvelope()],
            idleTimeout: TimeAmount(configuration.connectionTimeout),
            httpDecoderConfiguration: .init(
                maxHeaderFieldSize: Self.maximumHeaderFieldSize, maxHeaderListSize: Self.maximumHeaderListSize,
                maxHeaderFieldCount: Self.maximumHeaderFieldCount))
        return Application(
            router: router,
            server: .limitedTLS(
                http: http,
                tls: TLSChannelConfiguration(
                    tlsConfiguration: tls, customAsyncVerificationCallback: { _ in .certificateVerified }),
                limit: ConnectionLimit(
                    listener: "client", maximum: configuration.maximumConnections, logger: logger,
                    trimmer: heapTrimmer)),
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.clientAddress.host, port: configuration.clientAddress.port),
                serverName: "marblerun-swift"),
            onServerRunning: { [logger, configuration] _ in
                logger.notice("client API listening", metadata: ["address": "\(configuration.clientAddress)"])
            },
            logger: logger)
    }

    private func setStartupManifest(_ coordinator: Coordinator) async throws {
        guard let url = configuration.startupManifest else { return }
        try await coordinator.synchronize()
        guard await coordinator.state == .acceptingManifest else { return }
        let bytes: [UInt8]
        do {
            bytes = Array(try Data(contentsOf: url))
        } catch {
            throw ServerConfigurationError(
                "cannot read the start-up manifest \(url.path): \(error.localizedDescription)")
        }
        let result: Coordinator.ManifestResult
        do {
            result = try await coordinator.setManifest(bytes)
        } catch {
            // Replicas started together: another one set it first.
            guard [.conflict, .wrongState].contains(error.code), configuration.postgresURL != nil else { throw error }
            logger.notice("another replica set the start-up manifest first")
            return
        }
        let fingerprint = await coordinator.manifest?.fingerprint ?? ""
        logger.notice("start-up manifest set", metadata: ["file": "\(url.path)", "fingerprint": "\(fingerprint)"])
        for warning in result.warnings {
            logger.warning("manifest warning", metadata: ["problem": "\(warning.description)"])
        }
    }

    /// A state was opened in this seal directory before: its marker file is there. (Not the
    /// sealing key: it exists from a first start that failed before any state was made.)
    private var sealDirectoryHeldState: Bool {
        FileManager.default.fileExists(atPath: configuration.stateMarkerPath)
    }

    /// Records beside the SQLite database that it holds a state, so that an emptied or deleted
    /// database stops the next start-up instead of silently starting afresh.
    private func markStateHeld() throws {
        guard configuration.postgresURL == nil,
            !FileManager.default.fileExists(atPath: configuration.stateMarkerPath)
        else { return }
        let text = "This seal directory holds a Coordinator state in \(ServerConfiguration.databaseName).\n"
        guard
            FileManager.default.createFile(
                atPath: configuration.stateMarkerPath, contents: Data(text.utf8),
                attributes: [.posixPermissions: 0o600])
        else {
            throw ServerConfigurationError("cannot write \(configuration.stateMarkerPath) in the seal directory")
        }
    }

    private func openStore() async throws -> any StateStore {
        let manager = FileManager.default
        do {
            try manager.createDirectory(
                at: configuration.sealDirectory, withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700])
        } catch {
            throw ServerConfigurationError(
                "cannot create the seal directory \(configuration.sealDirectory.path): \(error.localizedDescription)")
        }
        if let url = configuration.postgresURL {
            var storeLogger = logger
            storeLogger.logLevel = max(logger.logLevel, .warning)
            let store = try await PostgresStore.open(url: url, logger: storeLogger)
            logger.notice(
                "state store: PostgreSQL, shared with any replicas", metadata: ["database": "\(store.location)"])
            return store
        }
        return try await SQLiteStore.open(path: configuration.databasePath)
    }

    struct EnclaveEnvironment {
        var verifier: QuoteVerifier
        var collateral: any CollateralProvider
        var sealer: any Sealer
        var quoteIssuer: any QuoteIssuer
    }

    /// This Coordinator's own quote, verified as a marble's would be: it shows (and the log
    /// says) which enclave this is, and what a replica must be to be handed the data key.
    private func ownQuote(_ environment: EnclaveEnvironment) async throws -> VerifiedQuote {
        let verified: VerifiedQuote
        do throws(AttestationError) {
            let quote = try Quote(parsing: try environment.quoteIssuer.issueQuote(reportData: []))
            let collateral = try await environment.collateral.collateral(for: quote)
            verified = try environment.verifier.verify(quote, collateral: collateral, at: Date())
        } catch {
            throw ServerConfigurationError(
                "this Coordinator's own quote does not verify: \(error.message) [\(error.code)]; check the collateral service (--pccs, --qcnl-config) and the enclave"
            )
        }
        let tee = configuration.simulationDirectory == nil ? "SGX (Gramine)" : "simulated SGX"
        logger.notice(
            "running as an attested enclave",
            metadata: [
                "tee": "\(tee)", "uniqueID": "\(Hex.encode(verified.uniqueID))",
                "signerID": "\(Hex.encode(verified.signerID))", "productID": "\(verified.productID)",
                "securityVersion": "\(verified.securityVersion)", "tcbStatus": "\(verified.tcbStatus.rawValue)",
            ])
        if verified.debug && configuration.simulationDirectory == nil {
            logger.warning("this is a DEBUG enclave: its memory can be read by the host; never use it in production")
        }
        return verified
    }

    /// Without `--simulation`: Gramine's attestation interface, which must say `dcap`; quotes
    /// and sealing keys come from it, collateral from the configured service.
    private func gramineEnvironment(collateralClient: HTTPClient?) throws -> EnclaveEnvironment {
        let directory = configuration.gramineDirectory
        let typeFile = directory.appendingPathComponent("attestation_type")
        let type = FileManager.default.contents(atPath: typeFile.path).map {
            String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard type == "dcap", let service = configuration.collateralService, let collateralClient else {
            let found = type.map { "says \"\($0.prefix(40))\", not dcap" } ?? "does not exist"
            throw ServerConfigurationError(
                """
                no SGX enclave to run in: \(typeFile.path) \(found). Run the Coordinator under gramine-sgx with \
                sgx.remote_attestation = "dcap" (see deploy/gramine), or with --simulation DIR for development \
                (EDG_COORDINATOR_SIMULATION)
                """)
        }
        var root = TrustAnchors.intelSGXRootCA
        if let pinned = configuration.sgxRootCA {
            root = pinned
            logger.warning(
                "quotes and collateral are checked against a root CA given by --sgx-root-ca instead of Intel's SGX Root CA: for test platforms only",
                metadata: ["subject": "\(pinned.subject)"])
        }
        return EnclaveEnvironment(
            verifier: QuoteVerifier(trustedRoot: root),
            collateral: collateralProvider(service, client: collateralClient),
            sealer: GramineSealer(directory: directory), quoteIssuer: GramineQuoteIssuer(directory: directory))
    }

    /// The provider for `service`, said in the log (without any credentials in the URL).
    private func collateralProvider(_ service: QCNLConfiguration, client: HTTPClient) -> PCCSCollateralProvider {
        logger.notice(
            "collateral: fetched from a collateral service, cached until it expires",
            metadata: [
                "url": "\(PCCSCollateralProvider.displayed(service.collateralURL))",
                "tlsCertificateChecked": "\(service.useSecureCert)",
            ])
        return PCCSCollateralProvider(configuration: service, client: client)
    }

    /// In simulation: the simulated platform (created if absent) verifies marbles and issues
    /// the Coordinator's quote for the running executable; otherwise Gramine's interface.
    private func enclaveEnvironment(collateralClient: HTTPClient?) throws -> EnclaveEnvironment {
        guard let directory = configuration.simulationDirectory else {
            return try gramineEnvironment(collateralClient: collateralClient)
        }
        let platform: SimulatedPlatform
        if FileManager.default.fileExists(atPath: directory.appendingPathComponent("platform.json").path) {
            platform = try SimulatedPlatform.load(from: directory)
        } else {
            platform = try SimulatedPlatform.generate()
            try platform.write(to: directory)
            logger.notice("created a simulated SGX platform", metadata: ["directory": "\(directory.path)"])
        }
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let enclave = try SimulatedEnclave.measuring(executable: executable, signer: platform.defaultSigner)
        logger.warning(
            """
            SIMULATION MODE: no enclave protects this Coordinator. Quotes come from the simulated platform in \
            \(directory.path) and the sealing key is a plain file in the seal directory. Never use this in production.
            """,
            metadata: [
                "uniqueID": "\(Hex.encode(enclave.uniqueID))", "signerID": "\(Hex.encode(enclave.signerID))",
            ])
        var collateral: any CollateralProvider = platform.collateralProvider
        if let service = configuration.collateralService, let collateralClient {
            collateral = collateralProvider(service, client: collateralClient)
        }
        return EnclaveEnvironment(
            verifier: platform.verifier, collateral: collateral,
            sealer: try SimulationSealer(directory: configuration.sealDirectory),
            quoteIssuer: SimulatedQuoteIssuer(platform: platform, enclave: enclave))
    }

}

extension GRPCNIOTransportCore.SocketAddress {
    /// gRPC binds IP addresses only: `localhost` means the IPv4 loopback; other names are refused.
    static func listening(on address: ListenAddress) throws(ServerConfigurationError) -> Self {
        let host = address.host == "localhost" ? "127.0.0.1" : address.host
        guard let bytes = IPAddress.parse(host) else {
            throw ServerConfigurationError(
                "the mesh address \(address) must name an IP address (or localhost), not a host name")
        }
        return bytes.count == 4 ? .ipv4(host: host, port: address.port) : .ipv6(host: host, port: address.port)
    }
}

/// The gRPC server as a lifecycle service: stops accepting on graceful shutdown and lets
/// running activations finish.
struct GRPCService<Transport: ServerTransport>: Service {
    let server: GRPCServer<Transport>
    let transport: HTTP2ServerTransport.Posix
    let address: ListenAddress
    let logger: Logger

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { try await server.serve() }
                if (try? await transport.listeningAddress) != nil {
                    logger.notice("mesh API listening", metadata: ["address": "\(address)"])
                }
            }
        } onGracefulShutdown: {
            server.beginGracefulShutdown()
        }
    }
}

/// Publishes the Coordinator's state code as a gauge, and the activation counters of the
/// manifest's marble types as soon as a manifest is known (set here or by a replica).
struct StateGauge: Service {
    let coordinator: Coordinator
    let activationMetrics: ActivationMetrics

    func run() async throws {
        let gauge = Gauge(label: "coordinator_state")
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await coordinator.synchronize()
            gauge.record(await coordinator.state.rawValue)
            activationMetrics.prepare(await coordinator.marbleTypes)
            try? await Task.sleep(for: .seconds(1))
        }
    }
}
