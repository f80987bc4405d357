import CoordinatorTesting
import Foundation
import Testing

/// `charts/marblerun` rendered by a real Helm 3 (`scripts/fetch-helm`) with its default,
/// simulation and replica values: `helm lint --strict` passes, every object passes
/// kubernetes-validate --strict for Kubernetes 1.30 and the newest version it knows, each
/// values set renders what it promises, and a wrong value is refused at render time.
@Suite struct ChartTests {
    static var helm: URL {
        if let path = ProcessInfo.processInfo.environment["HELM"], !path.isEmpty { return URL(fileURLWithPath: path) }
        return TestData.packageRoot.appendingPathComponent(".build-tools/helm")
    }
    static let chart = TestData.packageRoot.appendingPathComponent("charts/marblerun")

    /// What `validate_manifests.py` says of the rendered objects, as Foundation objects.
    struct Rendered {
        struct Object {
            var kind: String
            var name: String
            var errors: [String: String]
            var object: NSDictionary
        }
        var versions: [String]
        var objects: [Object]
        /// The kinds of the custom resources left unchecked.
        var skipped: [String]

        init(_ data: Data) throws {
            let top = try #require(try JSONSerialization.jsonObject(with: data) as? NSDictionary)
            versions = top["versions"] as? [String] ?? []
            objects = (top["objects"] as? [NSDictionary] ?? []).map {
                Object(
                    kind: $0["kind"] as? String ?? "", name: $0["name"] as? String ?? "",
                    errors: $0["errors"] as? [String: String] ?? [:], object: $0["object"] as? NSDictionary ?? [:])
            }
            skipped = (top["skipped"] as? [NSDictionary] ?? []).compactMap { $0["kind"] as? String }
        }

        func object(_ kind: String, _ name: String) -> NSDictionary? {
            objects.first { $0.kind == kind && $0.name == name }?.object
        }
        func has(_ kind: String, _ name: String) -> Bool { object(kind, name) != nil }
    }

    static func helm(_ arguments: [String]) async throws -> ProcessRunner.Result {
        try #require(
            FileManager.default.isExecutableFile(atPath: helm.path),
            "no Helm at \(helm.path): run scripts/fetch-helm (./scripts/test does)")
        return try await ProcessRunner.run(helm, arguments)
    }

    /// Lints and renders the chart with `values` (a file under `ci/`, or none), and validates every object.
    static func render(_ values: String?, set: [String] = [], extra: [String] = []) async throws -> Rendered {
        let valueArguments =
            (values.map { ["-f", chart.appendingPathComponent($0).path] } ?? []) + set.flatMap { ["--set", $0] } + extra
        let lint = try await helm(["lint", "--strict", chart.path] + valueArguments)
        #expect(lint.status == 0, "helm lint --strict \(values ?? "default"): \(lint.stdout) \(lint.stderr)")
        let template = try await helm(["template", "mr", chart.path, "--namespace", "marblerun"] + valueArguments)
        try #require(template.status == 0, "helm template \(values ?? "default"): \(template.stderr)")
        return try await validated(template.stdoutData, values ?? "default")
    }

    /// Rendered YAML checked by kubernetes-validate (strict, 1.30 and the newest); every object must pass.
    static func validated(_ yaml: Data, _ label: String) async throws -> Rendered {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("chart-\(UUID().uuidString).yaml")
        defer { try? FileManager.default.removeItem(at: file) }
        try yaml.write(to: file)
        let script = TestData.packageRoot.appendingPathComponent("Tests/Support/validate_manifests.py")
        let run = try await ProcessRunner.run(TestData.python, [script.path, file.path])
        try #require(run.status == 0, "\(run.stderr)")
        let rendered = try Rendered(run.stdoutData)
        #expect(rendered.versions.count == 2 && rendered.versions.first == "1.30.0")
        for object in rendered.objects {
            #expect(object.errors.isEmpty, "\(label): \(object.kind) \(object.name): \(object.errors)")
        }
        return rendered
    }

    static func container(_ deployment: NSDictionary?) -> NSDictionary? {
        (deployment?.at("spec", "template", "spec", "containers") as? [NSDictionary])?.first
    }

    static func env(_ container: NSDictionary?) -> [String: NSDictionary] {
        var result: [String: NSDictionary] = [:]
        for entry in container?["env"] as? [NSDictionary] ?? [] {
            if let name = entry["name"] as? String { result[name] = entry }
        }
        return result
    }

    @Test func defaultValuesRenderOneSGXCoordinatorWithMarbleRunsNames() async throws {
        let rendered = try await Self.render(nil)
        #expect(rendered.skipped.isEmpty)
        for (kind, name) in [
            ("Deployment", "marblerun-coordinator"), ("Service", "coordinator-client-api"),
            ("Service", "coordinator-mesh-api"), ("PersistentVolumeClaim", "coordinator-pv-claim"),
            ("ServiceAccount", "marblerun-coordinator"), ("ConfigMap", "coordinator-dcap-config"),
        ] {
            #expect(rendered.has(kind, name), "\(kind) \(name)")
        }
        #expect(!rendered.has("Deployment", "marble-injector"), "the injector starts only when asked")
        let deployment = rendered.object("Deployment", "marblerun-coordinator")
        let container = Self.container(deployment)
        let limits = container?.at("resources", "limits") as? NSDictionary
        #expect(limits?["sgx.intel.com/epc"] as? String == "10Mi" && limits?["sgx.intel.com/enclave"] != nil)
        #expect(
            (deployment?.at("spec", "template", "spec", "tolerations") as? [NSDictionary])?.first?["key"]
                as? String == "sgx.intel.com/epc")
        let env = Self.env(container)
        #expect(env["QCNL_CONF_PATH"]?["value"] as? String == "/etc/sgx_default_qcnl.conf")
        #expect(env["EDG_COORDINATOR_SIMULATION"] == nil)
        #expect(env["EDG_COORDINATOR_MESH_ADDR"]?["value"] as? String == "0.0.0.0:2001")
        #expect(
            (env["EDG_COORDINATOR_DNS_NAMES"]?["value"] as? String)?.contains(
                "coordinator-mesh-api.marblerun.svc.cluster.local") == true)
        #expect(container?.at("readinessProbe", "httpGet", "path") as? String == "/api/v2/status")
        #expect(container?.at("securityContext", "readOnlyRootFilesystem") as? Bool == true)
        #expect(container?.at("securityContext", "allowPrivilegeEscalation") as? Bool == false)
        #expect(deployment?.at("spec", "template", "spec", "securityContext", "runAsNonRoot") as? Bool == true)
        let qcnl = rendered.object("ConfigMap", "coordinator-dcap-config")?.at("data") as? NSDictionary
        let conf = try #require(qcnl?["sgx_default_qcnl.conf"] as? String)
        let parsed = try JSONSerialization.jsonObject(with: Data(conf.utf8)) as? NSDictionary
        #expect(parsed?["pccs_url"] as? String == "https://localhost:8081/sgx/certification/v4/")
        #expect(parsed?["use_secure_cert"] as? Bool == true)
        let client = rendered.object("Service", "coordinator-client-api")
        #expect((client?.at("spec", "ports") as? [NSDictionary])?.first?["port"] as? Int == 4433)
    }

    @Test func simulationValuesDropSGXAndStartTheInjectorWithTheCoordinatorsTrust() async throws {
        let rendered = try await Self.render("ci/simulation-values.yaml")
        let container = Self.container(rendered.object("Deployment", "marblerun-coordinator"))
        #expect(container?.at("resources", "limits") == nil, "no SGX resources in simulation")
        #expect(Self.env(container)["EDG_COORDINATOR_SIMULATION"]?["value"] as? String == "/simulation")
        // The simulated platform is the node's, for the marbles there too.
        let volumes = rendered.object("Deployment", "marblerun-coordinator")?.at("spec", "template", "spec", "volumes")
        let platform = (volumes as? [NSDictionary])?.first { $0["name"] as? String == "simulation-platform" }
        #expect(platform?.at("hostPath", "path") as? String == "/var/lib/marblerun/simulation")
        #expect(!rendered.has("ConfigMap", "coordinator-dcap-config"))
        #expect(rendered.has("ConfigMap", "marblerun-coordinator-trust"))
        let injector = Self.container(rendered.object("Deployment", "marble-injector"))
        let args = injector?["args"] as? [String] ?? []
        #expect(args.contains("--coordinator-address=coordinator-mesh-api.marblerun:2001"))
        #expect(args.contains("--trust-file=/etc/marblerun/trust/era.json"))
        #expect(args.contains("--simulation-platform=/var/lib/marblerun/simulation"))
        let injectorVolumes = rendered.object("Deployment", "marble-injector")?.at(
            "spec", "template", "spec", "volumes")
        #expect(
            (injectorVolumes as? [NSDictionary])?.contains {
                $0.at("configMap", "name") as? String == "marblerun-coordinator-trust"
            }
                == true, "the injector reads the era config from the ConfigMap in its own namespace")
        #expect(args.contains("--coordinator-client-address=coordinator-client-api.marblerun:4433"))
        let webhook = rendered.object("MutatingWebhookConfiguration", "marble-injector-marblerun")
        let hook = (webhook?["webhooks"] as? [NSDictionary])?.first
        #expect(hook?["failurePolicy"] as? String == "Fail")
        #expect(hook?.at("clientConfig", "service", "path") as? String == "/mutate")
        #expect(
            (hook?.at("objectSelector", "matchExpressions") as? [NSDictionary])?.first?["key"] as? String
                == "marblerun/marbletype")
        // Without cert-manager or a CA bundle the chart makes the webhook's CA and certificate.
        let secret = rendered.object("Secret", "marble-injector-webhook-certs")
        let caBundle = hook?.at("clientConfig", "caBundle") as? String
        #expect(caBundle != nil && secret?.at("data", "ca.crt") as? String == caBundle)
        #expect(
            rendered.has("NetworkPolicy", "marblerun-coordinator") && rendered.has("NetworkPolicy", "marble-injector"))
    }

    @Test func replicaValuesShareAPostgreSQLStoreBehindAHeadlessService() async throws {
        let rendered = try await Self.render("ci/replicas-values.yaml")
        let deployment = rendered.object("Deployment", "marblerun-coordinator")
        #expect(deployment?.at("spec", "replicas") as? Int == 3)
        #expect(deployment?.at("spec", "template", "spec", "topologySpreadConstraints") != nil)
        let env = Self.env(Self.container(deployment))
        #expect(env["EDG_STORE_BACKEND"]?["value"] as? String == "postgres")
        #expect(env["EDG_STORE_URL"]?.at("valueFrom", "secretKeyRef", "name") as? String == "marblerun-store")
        #expect(
            env["EDG_COORDINATOR_PEERS"]?["value"] as? String == "coordinator-peers.marblerun.svc.cluster.local:4433")
        #expect(env["EDG_COORDINATOR_PROMETHEUS_ADDR"] != nil)
        #expect(
            !rendered.has("PersistentVolumeClaim", "coordinator-pv-claim"), "replicas keep their state in PostgreSQL")
        #expect(
            rendered.object("Service", "coordinator-peers")?.at("spec", "clusterIP") as? String == "None")
        #expect(
            rendered.has("PodDisruptionBudget", "marblerun-coordinator")
                && rendered.has("Service", "coordinator-metrics"))
        #expect(
            Set(rendered.skipped) == ["Issuer", "Certificate", "ServiceMonitor"],
            "custom resources have no schema in kubernetes-validate: \(rendered.skipped)")
        let injector = Self.container(rendered.object("Deployment", "marble-injector"))
        let injectorArgs = injector?["args"] as? [String] ?? []
        #expect(injectorArgs.contains("--resource-key=kubernetes.azure.com/sgx_epc_mem_in_MiB"))
    }

    /// For single-host runs (podman kube play): the host's network without port mappings, which
    /// podman refuses there, and the claim's owner as podman reads it from annotations.
    @Test func hostNetworkDropsPortMappingsAndTheClaimCarriesItsAnnotations() async throws {
        let rendered = try await Self.render(
            "ci/simulation-values.yaml",
            set: ["coordinator.hostNetwork=true"],
            extra: ["--set-string", "coordinator.pvcAnnotations.volume\\.podman\\.io/uid=65532"])
        let deployment = rendered.object("Deployment", "marblerun-coordinator")
        #expect(deployment?.at("spec", "template", "spec", "hostNetwork") as? Bool == true)
        #expect(Self.container(deployment)?["ports"] == nil)
        let claim = rendered.object("PersistentVolumeClaim", "coordinator-pv-claim")
        #expect(
            claim?.at("metadata", "annotations", "volume.podman.io/uid") as? String == "65532",
            "\(String(describing: claim))")
    }

    @Test func wrongValuesAreRefusedWhenTheChartRenders() async throws {
        let cases: [([String], String)] = [
            (["coordinator.replicas=two"], "coordinator.replicas: Invalid type"),
            (["coordinator.simulation=maybe"], "coordinator.simulation: Invalid type"),
            (["coordinator.clientServerPort=70000"], "coordinator.clientServerPort"),
            (["marbleInjector.failurePolicy=Sometimes"], "marbleInjector.failurePolicy"),
            (["coordinator.store.backend=etcd"], "coordinator.store.backend"),
            (["coordinator.unknownKey=1"], "unknownKey"),
            (["coordinator.simulationHostPath=relative/dir"], "coordinator.simulationHostPath"),
            (["coordinator.replicas=3"], "needs coordinator.store.backend=postgres"),
            (["coordinator.store.backend=postgres"], "needs coordinator.store.urlSecret.name"),
            (
                [
                    "coordinator.replicas=2", "coordinator.simulation=true", "coordinator.store.backend=postgres",
                    "coordinator.store.urlSecret.name=db",
                ], "none could attest another"
            ),
        ]
        for (set, message) in cases {
            let run = try await Self.helm(["template", "mr", Self.chart.path] + set.flatMap { ["--set", $0] })
            #expect(run.status != 0 && run.stderr.contains(message), "\(set): \(run.stderr)")
        }
        let era = try await Self.helm(
            ["template", "mr", Self.chart.path, "--set-json", #"coordinator.eraConfig="{not json""#])
        #expect(era.status != 0 && era.stderr.contains("coordinator.eraConfig is not JSON"), "\(era.stderr)")
    }

    /// The emojivoto chart: lint-clean, every object valid, each marble a Deployment labelled for
    /// the marble-injector, hardened like the Coordinator, and a wrong value refused.
    @Test func theEmojivotoChartRendersMarblesLabelledForInjection() async throws {
        let emojivoto = TestData.packageRoot.appendingPathComponent("Examples/emojivoto/kubernetes").path
        let lint = try await Self.helm(["lint", "--strict", emojivoto])
        #expect(lint.status == 0, "\(lint.stdout) \(lint.stderr)")
        let template = try await Self.helm(["template", "emojivoto", emojivoto, "--namespace", "emojivoto"])
        try #require(template.status == 0, "\(template.stderr)")
        let rendered = try await Self.validated(template.stdoutData, "emojivoto")
        #expect(rendered.objects.count == 6)
        for marble in ["web", "emoji", "voting"] {
            let deployment = rendered.object("Deployment", marble)
            #expect(
                deployment?.at("spec", "template", "metadata", "labels", "marblerun/marbletype") as? String == marble)
            let container = Self.container(deployment)
            #expect(container?["image"] as? String == "localhost/marblerun-swift/emojivoto-\(marble):0.1.0")
            #expect(container?.at("securityContext", "readOnlyRootFilesystem") as? Bool == true)
            #expect(Self.env(container).isEmpty, "the marble-injector, not the chart, sets the marble's variables")
            let service = rendered.object("Service", marble)
            #expect((service?.at("spec", "ports") as? [NSDictionary])?.first?["port"] as? Int == 8080)
        }
        let wrong = try await Self.helm(["template", "emojivoto", emojivoto, "--set", "ports.web=http"])
        #expect(wrong.status != 0 && wrong.stderr.contains("ports.web"), "\(wrong.stderr)")
    }
}

extension NSDictionary {
    /// The value under the keys in turn (Kubernetes keys may hold dots: `data`, `ca.crt`).
    func at(_ path: String...) -> Any? {
        var current: Any? = self
        for key in path { current = (current as? NSDictionary)?[key] }
        return current
    }
}
