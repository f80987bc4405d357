/// What the marble-injector adds to a marble's pod.
public struct InjectorConfiguration: Sendable, Hashable {
    /// How marbles find and trust the Coordinator beyond its address: a ConfigMap the chart
    /// creates, holding an era config (the marble then checks the Coordinator's quote on its
    /// client API) or a pinned root certificate (a file ending in `.pem`).
    public struct Trust: Sendable, Hashable {
        public var configMap: String
        public var key: String
        /// The Coordinator's client API, for a marble that checks its quote (era config).
        public var clientAddress: String

        public init(configMap: String, key: String, clientAddress: String) {
            self.configMap = configMap
            self.key = key
            self.clientAddress = clientAddress
        }

        public var isPinnedRoot: Bool { key.hasSuffix(".pem") }
    }

    /// The Coordinator's mesh API, e.g. `coordinator-mesh-api.marblerun:2001`.
    public var coordinatorAddress: String
    /// The cluster's DNS domain, for the marble's DNS names.
    public var clusterDomain: String
    /// The SGX device plugin's resource: `sgx.intel.com/epc` (Intel: with `enclave` and
    /// `provision`), `kubernetes.azure.com/sgx_epc_mem_in_MiB`, `alibabacloud.com/sgx_epc_MiB`, or another.
    public var resourceKey: String
    public var trust: Trust?

    public init(
        coordinatorAddress: String, clusterDomain: String = "cluster.local",
        resourceKey: String = InjectorConfiguration.intelEPC, trust: Trust? = nil
    ) {
        self.coordinatorAddress = coordinatorAddress
        self.clusterDomain = clusterDomain
        self.resourceKey = resourceKey
        self.trust = trust
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
