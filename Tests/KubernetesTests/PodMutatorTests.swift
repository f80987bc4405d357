import CoordinatorTesting
import Foundation
import JSONText
import MarbleInjector
import Testing

/// The injector's patches applied by a JSON Patch library we did not write (PyPI jsonpatch),
/// each patched pod checked against Kubernetes' schemas (kubernetes-validate, strict) and
/// compared field by field with the pod expected.
@Suite struct PodMutatorTests {
    static let configuration = InjectorConfiguration(coordinatorAddress: "coordinator-mesh-api.marblerun:2001")
    static let uuidVolume =
        #"{"name": "marblerun-uuid", "downwardAPI": {"items": [{"path": "uuid-file", "fieldRef": {"fieldPath": "metadata.uid"}}]}}"#
    static let intelToleration = #"{"key": "sgx.intel.com/epc", "operator": "Exists", "effect": "NoSchedule"}"#
    static let intelLimits =
        #""sgx.intel.com/epc": "10Mi", "sgx.intel.com/enclave": "1", "sgx.intel.com/provision": "1""#

    /// The environment MarbleRun's injector gives a `voting-svc` marble in namespace `emojivoto`.
    static func marbleEnv(_ type: String = "voting-svc", namespace: String = "emojivoto", uuid: Bool = true) -> String {
        var env = [
            #"{"name": "EDG_MARBLE_COORDINATOR_ADDR", "value": "coordinator-mesh-api.marblerun:2001"}"#,
            #"{"name": "EDG_MARBLE_TYPE", "value": "\#(type)"}"#,
            #"{"name": "EDG_MARBLE_DNS_NAMES", "value": "\#(type),\#(type).\#(namespace),\#(type).\#(namespace).svc.cluster.local"}"#,
        ]
        if uuid { env.append(#"{"name": "EDG_MARBLE_UUID_FILE", "value": "/\#(type)-uid/uuid-file"}"#) }
        return env.joined(separator: ", ")
    }

    static func uuidMount(_ type: String = "voting-svc") -> String {
        #"{"name": "marblerun-uuid", "mountPath": "/\#(type)-uid", "readOnly": true}"#
    }

    static func pod(labels: String, annotations: String? = nil, spec: String) -> String {
        let annotations = annotations.map { #", "annotations": {\#($0)}"# } ?? ""
        return
            #"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "voting-7d9", "namespace": "emojivoto", "labels": {\#(labels)}\#(annotations)}, "spec": {\#(spec)}}"#
    }

    static let eraConfig = #"{"coordinator": {"UniqueID": "ab12"}}"#
    static let root = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    /// A JSON string literal of `text`.
    static func quoted(_ text: String) -> String {
        String(decoding: JSONValue.string(text).serialized(), as: UTF8.self)
    }

    static func trustVolume(_ file: String, _ annotation: String) -> String {
        #"{"name": "marblerun-trust", "downwardAPI": {"items": [{"path": "\#(file)", "fieldRef": {"fieldPath": "metadata.annotations['\#(annotation)']"}}]}}"#
    }

    struct Case {
        var name: String
        var pod: String
        /// The patched pod, or nil when the pod must be refused.
        var expected: String?
        var configuration = PodMutatorTests.configuration
        var namespace = "emojivoto"
    }

    static let marble = #""marblerun/marbletype": "voting-svc""#

    static let cases: [Case] = [
        Case(
            name: "a plain marble gets its environment, UUID volume, Intel SGX limits and toleration",
            pod: pod(labels: marble, spec: #""containers": [{"name": "voting", "image": "voting:1"}]"#),
            expected: pod(
                labels: marble,
                spec:
                    #""containers": [{"name": "voting", "image": "voting:1", "env": [\#(marbleEnv())], "volumeMounts": [\#(uuidMount())], "resources": {"limits": {\#(intelLimits)}}}], "volumes": [\#(uuidVolume)], "tolerations": [\#(intelToleration)]"#
            )),
        Case(
            name:
                "limits the pod sets are kept, the missing ones added; a requested SGX resource gets its request as limit",
            pod: pod(
                labels: marble,
                spec:
                    #""containers": [{"name": "voting", "image": "voting:1", "resources": {"limits": {"cpu": "500m", "sgx.intel.com/epc": "64Mi"}, "requests": {"sgx.intel.com/enclave": "1", "memory": "64Mi"}}}]"#
            ),
            expected: pod(
                labels: marble,
                spec:
                    #""containers": [{"name": "voting", "image": "voting:1", "env": [\#(marbleEnv())], "volumeMounts": [\#(uuidMount())], "resources": {"limits": {"cpu": "500m", "sgx.intel.com/epc": "64Mi", "sgx.intel.com/enclave": "1", "sgx.intel.com/provision": "1"}, "requests": {"sgx.intel.com/enclave": "1", "memory": "64Mi"}}}], "volumes": [\#(uuidVolume)], "tolerations": [\#(intelToleration)]"#
            )),
        Case(
            name:
                "variables the pod sets are never overwritten; its own UUID file means no UUID volume; a NoExecute toleration does not tolerate NoSchedule",
            pod: pod(
                labels: marble,
                spec:
                    #""containers": [{"name": "voting", "image": "voting:1", "env": [{"name": "EDG_MARBLE_TYPE", "value": "custom"}, {"name": "EDG_MARBLE_UUID_FILE", "value": "/data/uuid"}, {"name": "OTHER", "value": "x"}], "volumeMounts": [{"name": "data", "mountPath": "/data"}]}], "volumes": [{"name": "data", "emptyDir": {}}], "tolerations": [{"key": "sgx.intel.com/epc", "operator": "Exists", "effect": "NoExecute"}]"#
            ),
            expected: pod(
                labels: marble,
                spec:
                    #""containers": [{"name": "voting", "image": "voting:1", "env": [{"name": "EDG_MARBLE_TYPE", "value": "custom"}, {"name": "EDG_MARBLE_UUID_FILE", "value": "/data/uuid"}, {"name": "OTHER", "value": "x"}, {"name": "EDG_MARBLE_COORDINATOR_ADDR", "value": "coordinator-mesh-api.marblerun:2001"}, {"name": "EDG_MARBLE_DNS_NAMES", "value": "voting-svc,voting-svc.emojivoto,voting-svc.emojivoto.svc.cluster.local"}], "volumeMounts": [{"name": "data", "mountPath": "/data"}], "resources": {"limits": {\#(intelLimits)}}}], "volumes": [{"name": "data", "emptyDir": {}}], "tolerations": [{"key": "sgx.intel.com/epc", "operator": "Exists", "effect": "NoExecute"}, \#(intelToleration)]"#
            )),
        Case(
            name: "marblerun/marblecontainer: only that container is a marble",
            pod: pod(
                labels: marble + #", "marblerun/marblecontainer": "voting""#,
                spec: #""containers": [{"name": "proxy", "image": "proxy:1"}, {"name": "voting", "image": "voting:1"}]"#
            ),
            expected: pod(
                labels: marble + #", "marblerun/marblecontainer": "voting""#,
                spec:
                    #""containers": [{"name": "proxy", "image": "proxy:1"}, {"name": "voting", "image": "voting:1", "env": [\#(marbleEnv())], "volumeMounts": [\#(uuidMount())], "resources": {"limits": {\#(intelLimits)}}}], "volumes": [\#(uuidVolume)], "tolerations": [\#(intelToleration)]"#
            )),
        Case(
            name: "several containers: each one gets the marble's environment, the pod one UUID volume",
            pod: pod(
                labels: marble,
                spec: #""containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1", "env": []}]"#),
            expected: pod(
                labels: marble,
                spec:
                    #""containers": [{"name": "a", "image": "a:1", "env": [\#(marbleEnv())], "volumeMounts": [\#(uuidMount())], "resources": {"limits": {\#(intelLimits)}}}, {"name": "b", "image": "b:1", "env": [\#(marbleEnv())], "volumeMounts": [\#(uuidMount())], "resources": {"limits": {\#(intelLimits)}}}], "volumes": [\#(uuidVolume)], "tolerations": [\#(intelToleration)]"#
            )),
        Case(
            name: "marblerun/resource-injection=disabled: the environment only",
            pod: pod(
                labels: marble + #", "marblerun/resource-injection": "disabled""#,
                spec: #""containers": [{"name": "voting", "image": "voting:1"}]"#),
            expected: pod(
                labels: marble + #", "marblerun/resource-injection": "disabled""#,
                spec:
                    #""containers": [{"name": "voting", "image": "voting:1", "env": [\#(marbleEnv())], "volumeMounts": [\#(uuidMount())]}], "volumes": [\#(uuidVolume)]"#
            )),
        Case(
            name: "Azure's device plugin: one resource in MiB; the namespace defaults to default; names are lower case",
            pod:
                #"{"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "web-", "labels": {"marblerun/marbletype": "Web"}}, "spec": {"containers": [{"name": "web", "image": "web:1"}]}}"#,
            expected:
                #"{"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "web-", "labels": {"marblerun/marbletype": "Web"}}, "spec": {"containers": [{"name": "web", "image": "web:1", "env": [{"name": "EDG_MARBLE_COORDINATOR_ADDR", "value": "coordinator-mesh-api.marblerun:2001"}, {"name": "EDG_MARBLE_TYPE", "value": "Web"}, {"name": "EDG_MARBLE_DNS_NAMES", "value": "web,web.default,web.default.svc.cluster.local"}, {"name": "EDG_MARBLE_UUID_FILE", "value": "/Web-uid/uuid-file"}], "volumeMounts": [{"name": "marblerun-uuid", "mountPath": "/Web-uid", "readOnly": true}], "resources": {"limits": {"kubernetes.azure.com/sgx_epc_mem_in_MiB": "10"}}}], "volumes": [\#(uuidVolume)], "tolerations": [{"key": "kubernetes.azure.com/sgx_epc_mem_in_MiB", "operator": "Exists", "effect": "NoSchedule"}]}}"#,
            configuration: InjectorConfiguration(
                coordinatorAddress: "coordinator-mesh-api.marblerun:2001",
                resourceKey: "kubernetes.azure.com/sgx_epc_mem_in_MiB"),
            namespace: ""),
        Case(
            name:
                "beyond MarbleRun: the Coordinator's era config as an annotation projected into a file (ConfigMaps do not cross namespaces), and its client API",
            pod: pod(labels: marble, spec: #""containers": [{"name": "voting", "image": "voting:1"}]"#),
            expected: pod(
                labels: marble, annotations: #""marblerun/coordinator-era-config": \#(quoted(eraConfig))"#,
                spec:
                    #""containers": [{"name": "voting", "image": "voting:1", "env": [\#(marbleEnv()), {"name": "EDG_MARBLE_COORDINATOR_ERA_CONFIG", "value": "/marblerun-trust/era.json"}, {"name": "EDG_MARBLE_COORDINATOR_CLIENT_ADDR", "value": "coordinator-client-api.marblerun:4433"}], "volumeMounts": [\#(uuidMount()), {"name": "marblerun-trust", "mountPath": "/marblerun-trust", "readOnly": true}], "resources": {"limits": {\#(intelLimits)}}}], "volumes": [\#(uuidVolume), \#(trustVolume("era.json", "marblerun/coordinator-era-config"))], "tolerations": [\#(intelToleration)]"#
            ),
            configuration: InjectorConfiguration(
                coordinatorAddress: "coordinator-mesh-api.marblerun:2001",
                trust: .init(
                    kind: .eraConfig, document: eraConfig, clientAddress: "coordinator-client-api.marblerun:4433"))),
        Case(
            name:
                "a pinned root beside the pod's own annotations; a container with its own trust keeps it; an annotation the pod sets is its own",
            pod: pod(
                labels: marble, annotations: #""team": "votes""#,
                spec:
                    #""containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1", "env": [{"name": "EDG_MARBLE_COORDINATOR_ROOT_CA", "value": "/own/root.pem"}]}]"#
            ),
            expected: pod(
                labels: marble, annotations: #""team": "votes", "marblerun/coordinator-root-ca": \#(quoted(root))"#,
                spec:
                    #""containers": [{"name": "a", "image": "a:1", "env": [\#(marbleEnv()), {"name": "EDG_MARBLE_COORDINATOR_ROOT_CA", "value": "/marblerun-trust/root.pem"}], "volumeMounts": [\#(uuidMount()), {"name": "marblerun-trust", "mountPath": "/marblerun-trust", "readOnly": true}], "resources": {"limits": {\#(intelLimits)}}}, {"name": "b", "image": "b:1", "env": [{"name": "EDG_MARBLE_COORDINATOR_ROOT_CA", "value": "/own/root.pem"}, \#(marbleEnv())], "volumeMounts": [\#(uuidMount())], "resources": {"limits": {\#(intelLimits)}}}], "volumes": [\#(uuidVolume), \#(trustVolume("root.pem", "marblerun/coordinator-root-ca"))], "tolerations": [\#(intelToleration)]"#
            ),
            configuration: InjectorConfiguration(
                coordinatorAddress: "coordinator-mesh-api.marblerun:2001",
                trust: .init(kind: .rootCertificate, document: root, clientAddress: "unused:4433"))),
        Case(
            name: "an era config annotation the pod already carries is kept",
            pod: pod(
                labels: marble, annotations: #""marblerun/coordinator-era-config": "{}""#,
                spec: #""containers": [{"name": "voting", "image": "voting:1"}]"#),
            expected: pod(
                labels: marble, annotations: #""marblerun/coordinator-era-config": "{}""#,
                spec:
                    #""containers": [{"name": "voting", "image": "voting:1", "env": [\#(marbleEnv()), {"name": "EDG_MARBLE_COORDINATOR_ERA_CONFIG", "value": "/marblerun-trust/era.json"}, {"name": "EDG_MARBLE_COORDINATOR_CLIENT_ADDR", "value": "c:4433"}], "volumeMounts": [\#(uuidMount()), {"name": "marblerun-trust", "mountPath": "/marblerun-trust", "readOnly": true}], "resources": {"limits": {\#(intelLimits)}}}], "volumes": [\#(uuidVolume), \#(trustVolume("era.json", "marblerun/coordinator-era-config"))], "tolerations": [\#(intelToleration)]"#
            ),
            configuration: InjectorConfiguration(
                coordinatorAddress: "coordinator-mesh-api.marblerun:2001",
                trust: .init(kind: .eraConfig, document: eraConfig, clientAddress: "c:4433"))),
        Case(
            name:
                "simulation: the node's simulated platform read-only and EDG_MARBLE_SIMULATION, no SGX resources or toleration",
            pod: pod(labels: marble, spec: #""containers": [{"name": "voting", "image": "voting:1"}]"#),
            expected: pod(
                labels: marble,
                spec:
                    #""containers": [{"name": "voting", "image": "voting:1", "env": [\#(marbleEnv()), {"name": "EDG_MARBLE_SIMULATION", "value": "/marblerun-simulation"}], "volumeMounts": [\#(uuidMount()), {"name": "marblerun-simulation", "mountPath": "/marblerun-simulation", "readOnly": true}]}], "volumes": [\#(uuidVolume), {"name": "marblerun-simulation", "hostPath": {"path": "/var/lib/marblerun/simulation", "type": "Directory"}}]"#
            ),
            configuration: InjectorConfiguration(
                coordinatorAddress: "coordinator-mesh-api.marblerun:2001",
                simulationPlatform: "/var/lib/marblerun/simulation")),
        Case(
            name: "an empty marblerun/marbletype is refused",
            pod: pod(
                labels: #""marblerun/marbletype": """#,
                spec: #""containers": [{"name": "voting", "image": "voting:1"}]"#),
            expected: nil),
        Case(
            name: "no marblerun/marbletype label is refused",
            pod: pod(labels: #""app": "voting""#, spec: #""containers": [{"name": "voting", "image": "voting:1"}]"#),
            expected: nil),
        Case(
            name: "marblerun/marblecontainer naming no container is refused",
            pod: pod(
                labels: marble + #", "marblerun/marblecontainer": "nothing""#,
                spec: #""containers": [{"name": "voting", "image": "voting:1"}]"#),
            expected: nil),
        Case(
            name: "a volume of the injector's name already in the pod is refused, not replaced",
            pod: pod(
                labels: marble,
                spec:
                    #""containers": [{"name": "voting", "image": "voting:1"}], "volumes": [{"name": "marblerun-uuid", "emptyDir": {}}]"#
            ),
            expected: nil),
    ]

    @Test func patchedPodsAreValidAndHaveExactlyTheExpectedFields() async throws {
        var input: [JSONValue] = []
        var refusals: [String: String] = [:]
        for item in Self.cases {
            let pod = try JSONParser().parse(Array(item.pod.utf8))
            let decision = PodMutator(configuration: item.configuration).mutate(pod: pod, namespace: item.namespace)
            switch decision {
            case .denied(let reason):
                refusals[item.name] = reason
                #expect(item.expected == nil, "\(item.name) was refused: \(reason)")
            case .allowed(let patch, _):
                #expect(item.expected != nil, "\(item.name) was admitted")
                input.append(
                    .object([
                        JSONMember("name", .string(item.name)), JSONMember("pod", pod),
                        JSONMember("patch", try JSONParser().parse(patch.serialized)),
                    ]))
                // The expected pod itself must be valid, or the comparison proves little.
                if let expected = item.expected {
                    input.append(
                        .object([
                            JSONMember("name", .string("expected: " + item.name)),
                            JSONMember("pod", try JSONParser().parse(Array(expected.utf8))), JSONMember("patch", .null),
                        ]))
                }
            }
        }
        #expect(refusals.count == 4)
        #expect(refusals.values.allSatisfy { !$0.isEmpty })
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("injector-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: work) }
        try Data(JSONValue.array(input).serialized()).write(to: work)
        let script = TestData.packageRoot.appendingPathComponent("Tests/Support/apply_patch.py")
        let run = try await ProcessRunner.run(TestData.python, [script.path, work.path])
        try #require(run.status == 0, "\(run.stderr)")
        // Foundation objects compare whole, whatever the order of keys.
        let applied = try #require(try JSONSerialization.jsonObject(with: run.stdoutData) as? [NSDictionary])
        try #require(applied.count == input.count)
        let versions = applied.first?["versions"] as? [String]
        #expect(versions?.count == 2 && versions?.first == "1.30.0")
        let byName = Dictionary(uniqueKeysWithValues: applied.map { ($0["name"] as? String ?? "", $0) })
        for item in Self.cases {
            guard let expected = item.expected, let patched = byName[item.name],
                let wanted = byName["expected: " + item.name]
            else { continue }
            let errors = (patched["errors"] as? [String: String] ?? [:], wanted["errors"] as? [String: String] ?? [:])
            #expect(errors.0.isEmpty, "\(item.name): \(errors.0)")
            #expect(errors.1.isEmpty, "expected pod of \(item.name): \(errors.1)")
            let pod = try #require(patched["pod"] as? NSDictionary)
            #expect(pod.isEqual(wanted["pod"]), "\(item.name): got \(pod), want \(expected)")
        }
    }

    /// Admitting a pod twice (a retried request, a webhook listed twice) changes nothing the second time.
    @Test func aPodAlreadyInjectedGetsNothingMore() throws {
        let pod = try JSONParser().parse(Array(Self.cases[0].expected!.utf8))
        guard
            case .allowed(let patch, _) = PodMutator(configuration: Self.configuration).mutate(
                pod: pod, namespace: "emojivoto")
        else {
            Issue.record("refused")
            return
        }
        #expect(patch.isEmpty, "\(patch.map(\.pointer))")
    }

    @Test func pointersEscapeSlashesAndTildes() {
        #expect(PatchOperation(add: ["a/b", "c~d", "-"], .null).pointer == "/a~1b/c~0d/-")
    }
}
