import JSONText

/// What MarbleRun's marble-injector does to a pod, as JSON Patch additions: the marble's
/// environment (Coordinator address, marble type, DNS names, a UUID file from the pod's UID),
/// SGX resource limits and a toleration for the device plugin's resource key, and, beyond
/// MarbleRun, the Coordinator's trust (an annotation projected into a file) and, in simulation,
/// the node's simulated platform. Nothing the pod already sets is changed.
public struct PodMutator: Sendable {
    public static let marbleTypeLabel = "marblerun/marbletype"
    public static let marbleContainerLabel = "marblerun/marblecontainer"
    public static let resourceInjectionLabel = "marblerun/resource-injection"
    static let uuidVolume = "marblerun-uuid"
    static let trustVolume = "marblerun-trust"
    static let trustDirectory = "/marblerun-trust"
    static let simulationVolume = "marblerun-simulation"
    static let simulationDirectory = "/marblerun-simulation"

    public enum Decision: Sendable, Hashable {
        /// Admit the pod with these additions (none: unchanged).
        case allowed([PatchOperation], message: String)
        case denied(String)
    }

    public let configuration: InjectorConfiguration

    public init(configuration: InjectorConfiguration) {
        self.configuration = configuration
    }

    /// The decision for `pod` (a Pod object) created in `namespace`.
    public func mutate(pod: JSONValue, namespace: String) -> Decision {
        let labels = pod["metadata"]?["labels"]
        guard let marbleType = labels?[Self.marbleTypeLabel]?.stringValue else {
            return .denied(
                "the pod has no \(Self.marbleTypeLabel) label, so it is no marble; the webhook's objectSelector should not have sent it"
            )
        }
        guard !marbleType.isEmpty else {
            return .denied("the pod's \(Self.marbleTypeLabel) label is empty: set it to a marble of the manifest")
        }
        guard let containers = pod["spec"]?["containers"]?.arrayValue, !containers.isEmpty else {
            return .denied("the pod has no containers")
        }
        let only = labels?[Self.marbleContainerLabel]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        let targets = containers.indices.filter { only == nil || containers[$0]["name"]?.stringValue == only }
        if let only, targets.isEmpty {
            return .denied("the pod's \(Self.marbleContainerLabel) label names \(only), but no container has that name")
        }
        // A simulated cluster has no SGX device plugin: its resources would leave marbles unscheduled.
        let injectResources =
            labels?[Self.resourceInjectionLabel]?.stringValue != "disabled" && configuration.simulationPlatform == nil
        let namespace = namespace.isEmpty ? "default" : namespace

        var patch: [PatchOperation] = []
        var needsUUIDVolume = false
        var needsTrustVolume = false
        var needsSimulationVolume = false
        for index in targets {
            let container = containers[index]
            let path = ["spec", "containers", String(index)]
            let env = container["env"]?.arrayValue ?? []
            let names = Set(env.compactMap { $0["name"]?.stringValue })
            var additions: [(String, String)] = [
                ("EDG_MARBLE_COORDINATOR_ADDR", configuration.coordinatorAddress),
                ("EDG_MARBLE_TYPE", marbleType),
                (
                    "EDG_MARBLE_DNS_NAMES",
                    "\(marbleType),\(marbleType).\(namespace),\(marbleType).\(namespace).svc.\(configuration.clusterDomain)"
                        .lowercased()
                ),
            ]
            var mounts: [JSONValue] = []
            if !names.contains("EDG_MARBLE_UUID_FILE") {
                needsUUIDVolume = true
                additions.append(("EDG_MARBLE_UUID_FILE", "/\(marbleType)-uid/uuid-file"))
                mounts.append(Self.mount(Self.uuidVolume, at: "/\(marbleType)-uid"))
            }
            if let trust = configuration.trust,
                names.isDisjoint(with: ["EDG_MARBLE_COORDINATOR_ROOT_CA", "EDG_MARBLE_COORDINATOR_ERA_CONFIG"])
            {
                needsTrustVolume = true
                let file = "\(Self.trustDirectory)/\(trust.fileName)"
                if trust.kind == .rootCertificate {
                    additions.append(("EDG_MARBLE_COORDINATOR_ROOT_CA", file))
                } else {
                    additions.append(("EDG_MARBLE_COORDINATOR_ERA_CONFIG", file))
                    additions.append(("EDG_MARBLE_COORDINATOR_CLIENT_ADDR", trust.clientAddress))
                }
                mounts.append(Self.mount(Self.trustVolume, at: Self.trustDirectory))
            }
            if configuration.simulationPlatform != nil, !names.contains("EDG_MARBLE_SIMULATION") {
                needsSimulationVolume = true
                additions.append(("EDG_MARBLE_SIMULATION", Self.simulationDirectory))
                mounts.append(Self.mount(Self.simulationVolume, at: Self.simulationDirectory))
            }
            let newEnv = additions.filter { !names.contains($0.0) }.map { name, value in
                JSONValue.object([JSONMember("name", .string(name)), JSONMember("value", .string(value))])
            }
            patch += Self.append(newEnv, to: path + ["env"], exists: container["env"]?.arrayValue != nil)
            patch += Self.append(
                mounts, to: path + ["volumeMounts"], exists: container["volumeMounts"]?.arrayValue != nil)
            if injectResources { patch += resourcePatch(container["resources"], at: path + ["resources"]) }
        }

        var volumes: [JSONValue] = []
        if needsUUIDVolume {
            // The marble's UUID is the pod's UID, as MarbleRun's injector makes it.
            volumes.append(Self.downwardAPIVolume(Self.uuidVolume, file: "uuid-file", field: "metadata.uid"))
        }
        if needsTrustVolume, let trust = configuration.trust {
            volumes.append(
                Self.downwardAPIVolume(
                    Self.trustVolume, file: trust.fileName, field: "metadata.annotations['\(trust.annotation)']"))
        }
        if needsSimulationVolume, let platform = configuration.simulationPlatform {
            volumes.append(
                .object([
                    JSONMember("name", .string(Self.simulationVolume)),
                    JSONMember(
                        "hostPath",
                        .object([JSONMember("path", .string(platform)), JSONMember("type", .string("Directory"))])),
                ]))
        }
        let existingVolumes = pod["spec"]?["volumes"]?.arrayValue ?? []
        for volume in volumes {
            let name = volume["name"]?.stringValue ?? ""
            if existingVolumes.contains(where: { $0["name"]?.stringValue == name }) {
                return .denied("the pod already has a volume named \(name), which the marble-injector adds; rename it")
            }
        }
        patch += Self.append(volumes, to: ["spec", "volumes"], exists: pod["spec"]?["volumes"]?.arrayValue != nil)
        if needsTrustVolume, let trust = configuration.trust {
            // An annotation the pod brings is its own choice of trust, like its own variables.
            let annotations = pod["metadata"]?["annotations"]?.objectValue
            if annotations == nil {
                patch.append(
                    PatchOperation(
                        add: ["metadata", "annotations"],
                        .object([JSONMember(trust.annotation, .string(trust.document))])))
            } else if pod["metadata"]?["annotations"]?[trust.annotation] == nil {
                patch.append(
                    PatchOperation(add: ["metadata", "annotations", trust.annotation], .string(trust.document)))
            }
        }

        if injectResources {
            let tolerations = pod["spec"]?["tolerations"]?.arrayValue ?? []
            if !tolerations.contains(where: tolerates) {
                let toleration = JSONValue.object([
                    JSONMember("key", .string(configuration.resourceKey)), JSONMember("operator", .string("Exists")),
                    JSONMember("effect", .string("NoSchedule")),
                ])
                patch += Self.append(
                    [toleration], to: ["spec", "tolerations"], exists: pod["spec"]?["tolerations"]?.arrayValue != nil)
            }
        }
        return .allowed(patch, message: "marble type \(marbleType): \(patch.count) additions")
    }

    /// Whether `toleration` already tolerates the device plugin's NoSchedule taint (its key, or
    /// every key with `Exists`; NoSchedule or every effect).
    private func tolerates(_ toleration: JSONValue) -> Bool {
        let key = toleration["key"]?.stringValue ?? ""
        let effect = toleration["effect"]?.stringValue ?? ""
        let keyMatches =
            key == configuration.resourceKey || (key.isEmpty && toleration["operator"]?.stringValue == "Exists")
        return keyMatches && (effect.isEmpty || effect == "NoSchedule")
    }

    /// SGX limits the container does not set; a limit the container only requests gets the
    /// requested amount (an extended resource's request must equal its limit).
    private func resourcePatch(_ resources: JSONValue?, at path: [String]) -> [PatchOperation] {
        let resources = resources?.objectValue.map(JSONValue.object)
        let limits = resources?["limits"]?.objectValue.map(JSONValue.object)
        let requests = resources?["requests"]
        let missing = configuration.resourceLimits.filter { limits?[$0.key] == nil }.map { key, value in
            JSONMember(key, requests?[key] ?? .string(value))
        }
        guard !missing.isEmpty else { return [] }
        if resources == nil { return [PatchOperation(add: path, .object([JSONMember("limits", .object(missing))]))] }
        if limits == nil { return [PatchOperation(add: path + ["limits"], .object(missing))] }
        return missing.map { PatchOperation(add: path + ["limits", $0.key], $0.value) }
    }

    /// Adds `items` to the array at `path`: the whole array when it does not exist, else each at its end.
    private static func append(_ items: [JSONValue], to path: [String], exists: Bool) -> [PatchOperation] {
        guard !items.isEmpty else { return [] }
        return exists ? items.map { PatchOperation(add: path + ["-"], $0) } : [PatchOperation(add: path, .array(items))]
    }

    /// A volume with one file: the pod's field `field` (a downward-API path) as `file`.
    private static func downwardAPIVolume(_ name: String, file: String, field: String) -> JSONValue {
        let item = JSONValue.object([
            JSONMember("path", .string(file)),
            JSONMember("fieldRef", .object([JSONMember("fieldPath", .string(field))])),
        ])
        return .object([
            JSONMember("name", .string(name)),
            JSONMember("downwardAPI", .object([JSONMember("items", .array([item]))])),
        ])
    }

    private static func mount(_ volume: String, at path: String) -> JSONValue {
        .object([
            JSONMember("name", .string(volume)), JSONMember("mountPath", .string(path)),
            JSONMember("readOnly", .bool(true)),
        ])
    }
}
