import ArgumentParser
import Attestation
import Foundation
import Hummingbird
import Logging
import MarbleInjector
import X509

/// `marble-injector`: MarbleRun's admission webhook for marble pods.
@main
struct MarbleInjectorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "marble-injector",
        abstract: "The admission webhook that prepares marble pods (label marblerun/marbletype) for the Coordinator.",
        discussion: """
            For each Pod it is sent (POST /mutate, admission.k8s.io/v1), it adds what the marble \
            launcher needs and the pod does not set: EDG_MARBLE_COORDINATOR_ADDR, EDG_MARBLE_TYPE, \
            EDG_MARBLE_DNS_NAMES, EDG_MARBLE_UUID_FILE (the pod's UID, from a downward-API volume), SGX \
            resource limits and a toleration for --resource-key (not with the label \
            marblerun/resource-injection=disabled, nor in simulation), and with --trust-file the \
            Coordinator's era config or root certificate (as a pod annotation that a downward-API \
            volume turns into a file, so that it reaches marbles in every namespace), so that marbles \
            verify the Coordinator. With --simulation-platform marbles get the node's simulated \
            platform (a read-only hostPath) and EDG_MARBLE_SIMULATION. The label \
            marblerun/marblecontainer limits this to one container. A pod with an empty \
            marblerun/marbletype is refused. GET /healthz answers "ok".

            Example: marble-injector --tls-cert /certs/tls.crt --tls-key /certs/tls.key \
            --coordinator-address coordinator-mesh-api.marblerun:2001 --trust-file /etc/marblerun/trust/era.json
            """)

    @Option(help: "Address to listen on.")
    var host = "0.0.0.0"
    @Option(help: "HTTPS port.")
    var port = 8443
    @Option(help: "The webhook's TLS certificate chain (PEM).")
    var tlsCert: String
    @Option(help: "The webhook's TLS private key (PEM).")
    var tlsKey: String
    @Option(help: "Seconds between reads of --tls-cert and --tls-key, so a renewed certificate is served.")
    var tlsReloadInterval = 60
    @Option(help: "The Coordinator's mesh API that marbles activate at.")
    var coordinatorAddress = "coordinator-mesh-api.marblerun:2001"
    @Option(help: "The cluster's DNS domain.")
    var clusterDomain = "cluster.local"
    @Option(
        help:
            "The SGX device plugin's resource: sgx.intel.com/epc, kubernetes.azure.com/sgx_epc_mem_in_MiB, alibabacloud.com/sgx_epc_MiB, or your plugin's."
    )
    var resourceKey = InjectorConfiguration.intelEPC
    @Option(
        help:
            "The Coordinator's era config (JSON), or its root certificate when the name ends in .pem, for marbles to verify it by."
    )
    var trustFile: String?
    @Option(help: "The Coordinator's client API, where a marble with an era config fetches its quote.")
    var coordinatorClientAddress = "coordinator-client-api.marblerun:4433"
    @Option(help: "Simulation only: the nodes' directory holding the simulated platform, mounted into marbles.")
    var simulationPlatform: String?

    func validate() throws {
        guard (1...65_535).contains(port) else { throw ValidationError("--port must be 1–65535, got \(port)") }
        guard (1...86_400).contains(tlsReloadInterval) else {
            throw ValidationError("--tls-reload-interval must be 1–86400 seconds, got \(tlsReloadInterval)")
        }
        for file in [tlsCert, tlsKey] where !FileManager.default.isReadableFile(atPath: file) {
            throw ValidationError("cannot read \(file): give the webhook's TLS certificate and key")
        }
        guard !coordinatorAddress.isEmpty, !resourceKey.isEmpty else {
            throw ValidationError("--coordinator-address and --resource-key must not be empty")
        }
        if let simulationPlatform, !simulationPlatform.hasPrefix("/") {
            throw ValidationError(
                "--simulation-platform must be an absolute path on the nodes, got \(simulationPlatform)")
        }
        _ = try trust()
    }

    /// The trust document, checked: an era config must be a JSON object, a root a PEM certificate.
    func trust() throws -> InjectorConfiguration.Trust? {
        guard let trustFile else { return nil }
        if trustFile.hasSuffix(".pem") {
            guard let data = FileManager.default.contents(atPath: trustFile), data.count <= 64 * 1024 else {
                throw ValidationError(
                    "cannot read \(trustFile) (at most 64 KiB): give the Coordinator's root certificate")
            }
            let document = String(decoding: data, as: UTF8.self)
            guard (try? Certificate(pemEncoded: document)) != nil else {
                throw ValidationError("\(trustFile) holds no PEM certificate: give the Coordinator's root certificate")
            }
            return .init(kind: .rootCertificate, document: document, clientAddress: coordinatorClientAddress)
        }
        do throws(AttestationError) {
            return .init(
                kind: .eraConfig, document: try EraConfig.document(at: trustFile),
                clientAddress: coordinatorClientAddress)
        } catch {
            throw ValidationError("\(error.message): give the Coordinator's era config")
        }
    }

    func run() async throws {
        var logger = Logger(label: "marble-injector")
        logger.logLevel = .info
        let trust = try trust()
        let server = InjectorServer(
            mutator: PodMutator(
                configuration: InjectorConfiguration(
                    coordinatorAddress: coordinatorAddress, clusterDomain: clusterDomain, resourceKey: resourceKey,
                    trust: trust, simulationPlatform: simulationPlatform)),
            logger: logger)
        let application = try server.application(
            host: host, port: port, certificateFile: tlsCert, keyFile: tlsKey,
            reloadInterval: .seconds(tlsReloadInterval))
        try await application.runService()
    }
}
