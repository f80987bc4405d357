/// What the marble-injector adds to a marble's pod.
public struct InjectorConfiguration: Sendable, Hashable {
    /// How marbles trust the Coordinator beyond its address: its era config (the marble then
    /// checks the Coordinator's quote on its client API) or a pinned root certificate (PEM).
    ///
    /// The document travels in the pod itself, as an annotation projected into a file by a
    /// downward-API volume: a ConfigMap volume could only name a ConfigMap in the pod's own
    /// namespace, and marbles run in their users' namespaces, not the Coordinator's.
    public struct Trust: Sendable, Hashable {
        public enum Kind: Sendable, Hashable {
            case eraConfig
            case rootCertificate
        }

        public var kind: Kind
        /// The era config (JSON) or the root certificate (PEM).
        public var document: String
        /// The Coordinator's client API, for a marble that checks its quote (era config).
        public var clientAddress: String

        public init(kind: Kind, document: String, clientAddress: String) {
            self.kind = kind
            self.document = document
            self.clientAddress = clientAddress
        }

        /// The pod annotation that carries the document.
        public var annotation: String {
            kind == .eraConfig ? "marblerun/coordinator-era-config" : "marblerun/coordinator-root-ca"
        }

        /// The file the marble reads it from, in the trust volume.
        public var fileName: String { kind == .eraConfig ? "era.json" : "root.pem" }
    }

    /// The Coordinator's mesh API, e.g. `coordinator-mesh-api.marblerun:2001`.
    public var coordinatorAddress: String
    /// The cluster's DNS domain, for the marble's DNS names.
    public var clusterDomain: String
    /// The SGX device plugin's resource: `sgx.intel.com/epc` (Intel: with `enclave` and
    /// `provision`), `kubernetes.azure.com/sgx_epc_mem_in_MiB`, `alibabacloud.com/sgx_epc_MiB`, or another.
    public var resourceKey: String
    public var trust: Trust?
    /// In simulation: the node's directory holding the simulated platform the Coordinator made
    /// (a hostPath, mounted read-only into marbles). Marbles then get no SGX resources.
    public var simulationPlatform: String?

    public init(
        coordinatorAddress: String, clusterDomain: String = "cluster.local",
        resourceKey: String = InjectorConfiguration.intelEPC, trust: Trust? = nil, simulationPlatform: String? = nil
    ) {
        self.coordinatorAddress = coordinatorAddress
        self.clusterDomain = clusterDomain
        self.resourceKey = resourceKey
        self.trust = trust
        self.simulationPlatform = simulationPlatform
    }

    public static let intelEPC = "sgx.intel.com/epc"
    public static let intelEnclave = "sgx.intel.com/enclave"
    public static let intelProvision = "sgx.intel.com/provision"

    /// The resource limits a marble container gets, as MarbleRun sets them: Intel's plugin takes
    /// EPC as a quantity and hands out the enclave and provisioning devices; the other plugins
    /// take EPC in MiB under their one key.
    public var resourceLimits: [(key: String, value: String)] {
        resourceKey == Self.intelEPC
            ? [(Self.intelEPC, "10Mi"), (Self.intelEnclave, "1"), (Self.intelProvision, "1")]
            : [(resourceKey, "10")]
    }
}
