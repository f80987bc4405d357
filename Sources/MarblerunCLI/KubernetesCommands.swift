import ArgumentParser
import Attestation
import Foundation
import JSONText

/// A program of the user's that a command drives (`helm`, `kubectl`): found by its environment
/// variable, else on PATH, with a message saying what to install when it is missing.
struct ExternalTool {
    let name: String
    let url: URL

    static func find(_ name: String, variable: String, purpose: String) throws -> ExternalTool {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment[variable], !path.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw CLIError("\(variable)=\(path) is not an executable \(name)")
            }
            return ExternalTool(name: name, url: URL(fileURLWithPath: path))
        }
        for directory in (environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(directory)).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) {
                return ExternalTool(name: name, url: candidate)
            }
        }
        throw CLIError(
            "\(purpose) needs \(name), which is not on PATH: install it (see https://\(name == "helm" ? "helm.sh/docs/intro/install" : "kubernetes.io/docs/tasks/tools")/) or set \(variable) to its path"
        )
    }

    /// Runs the tool with the terminal's output; `capture` keeps standard output instead.
    @discardableResult
    func run(_ arguments: [String], capture: Bool = false) async throws -> Data {
        let process = Process()
        process.executableURL = url
        process.arguments = arguments
        let output = Pipe()
        if capture { process.standardOutput = output }
        let exited = AsyncStream<Int32>.makeStream()
        process.terminationHandler = { exited.continuation.yield($0.terminationStatus) }
        try process.run()
        let reader = Task.detached { capture ? output.fileHandleForReading.readDataToEndOfFile() : Data() }
        let status = await exited.stream.first { _ in true } ?? -1
        let data = await reader.value
        guard status == 0 else { throw CLIError("\(name) \(arguments.first ?? "") failed (exit status \(status))") }
        return data
    }
}

/// `marblerun install`: the chart, through the user's Helm, with MarbleRun's flags.
struct InstallCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install",
        abstract: "Install the Coordinator (and the marble-injector) in a Kubernetes cluster with Helm.",
        discussion: """
            Runs `helm upgrade --install marblerun CHART` with values from these flags (MarbleRun's), \
            in the namespace given (marblerun by default, created if needed); --dry-run prints the \
            rendered manifests instead (`helm template`). Needs helm on PATH (or HELM=path) and, \
            unless --dry-run, a kubeconfig that reaches the cluster.

            Example: marblerun install --dcap-pccs-url https://pccs.example:8081/sgx/certification/v4/
            Example: marblerun install --simulation --era-config era.json --dry-run

            With --era-config (beyond MarbleRun) the chart keeps the Coordinator's era config in the \
            ConfigMap marblerun-coordinator-trust and the marble-injector gives it to every marble, \
            which then checks the Coordinator's quote before it trusts it.
            """)

    @Flag(help: "Run the Coordinator without an enclave, on a simulated platform (development only).")
    var simulation = false
    @Option(help: "A name the Coordinator's certificate holds besides its Services' names.")
    var domain = "localhost"
    @Option(help: "The PCCS the Coordinator gets collateral from (sgx_default_qcnl.conf's pccs_url).")
    var dcapPccsUrl = "https://localhost:8081/sgx/certification/v4/"
    @Option(help: "Verify the PCCS's TLS certificate: TRUE or FALSE.")
    var dcapSecureCert = "TRUE"
    @Option(help: "The SGX device plugin's resource (sgx.intel.com/epc, kubernetes.azure.com/sgx_epc_mem_in_MiB, …).")
    var resourceKey = "sgx.intel.com/epc"
    @Flag(help: "Do not install the marble-injector webhook.")
    var disableAutoInjection = false
    @Option(help: "The Coordinator's client API port.")
    var clientServerPort = 4433
    @Option(help: "The Coordinator's mesh API port.")
    var meshServerPort = 2001
    @Option(help: "The chart's directory (default: charts/marblerun here, or MARBLERUN_CHART).")
    var marblerunChartPath: String?
    @Option(help: "How many Coordinators; more than one needs --store-url-secret (PostgreSQL).")
    var replicas = 1
    @Option(help: "A Secret in the namespace whose key `url` holds the PostgreSQL URL of the replicas' store.")
    var storeUrlSecret: String?
    @Option(name: [.short, .long], help: "The namespace to install into.")
    var namespace = "marblerun"
    @Flag(help: "Print the manifests Helm would apply, and apply nothing.")
    var dryRun = false
    @Flag(help: "Wait until the Coordinator is ready.")
    var wait = false
    @Option(help: "The Coordinator's era config (JSON), which marbles verify it by (deploy/images/era-config).")
    var eraConfig: String?

    func validate() throws {
        for (name, port) in [("--client-server-port", clientServerPort), ("--mesh-server-port", meshServerPort)]
        where !(1...65_535).contains(port) {
            throw ValidationError("\(name) must be 1–65535, got \(port)")
        }
        guard ["TRUE", "FALSE"].contains(dcapSecureCert.uppercased()) else {
            throw ValidationError("--dcap-secure-cert is TRUE or FALSE, got \(dcapSecureCert)")
        }
        guard replicas >= 1 else { throw ValidationError("--replicas must be at least 1") }
        if replicas > 1 && storeUrlSecret == nil {
            throw ValidationError(
                "--replicas \(replicas) needs --store-url-secret NAME: replicas share their state in PostgreSQL")
        }
        if replicas > 1 && simulation {
            throw ValidationError(
                "--simulation runs one Coordinator: every replica would make its own simulated platform")
        }
        _ = try eraConfigDocument()
    }

    /// The era config file's text, once it parses as an era config.
    func eraConfigDocument() throws -> String? {
        guard let eraConfig else { return nil }
        do throws(AttestationError) {
            return try EraConfig.document(at: eraConfig)
        } catch {
            throw ValidationError("--era-config is no usable era config: \(error.message)")
        }
    }

    /// The chart's values these flags set, as JSON (which Helm reads as YAML): every string is
    /// the serializer's, so nothing a flag holds is reinterpreted.
    func values() throws -> String {
        func object(_ members: [(String, JSONValue)]) -> JSONValue { .object(members.map { JSONMember($0.0, $0.1) }) }
        var coordinator: [(String, JSONValue)] = [
            ("simulation", .bool(simulation)), ("hostname", .string(domain)),
            ("clientServerPort", .number(String(clientServerPort))),
            ("meshServerPort", .number(String(meshServerPort))),
            ("replicas", .number(String(replicas))),
        ]
        if resourceKey != "sgx.intel.com/epc" {
            // Helm merges maps with the chart's defaults: Intel's keys are removed by null.
            coordinator.append(
                (
                    "resources",
                    object([
                        (
                            "limits",
                            object([
                                (resourceKey, .string("10")), ("sgx.intel.com/epc", .null),
                                ("sgx.intel.com/enclave", .null), ("sgx.intel.com/provision", .null),
                            ])
                        )
                    ])
                ))
        }
        if let storeUrlSecret {
            coordinator.append(
                (
                    "store",
                    object([
                        ("backend", .string("postgres")),
                        ("urlSecret", object([("name", .string(storeUrlSecret)), ("key", .string("url"))])),
                    ])
                ))
        }
        if let document = try eraConfigDocument() { coordinator.append(("eraConfig", .string(document))) }
        let values = object([
            ("coordinator", object(coordinator)),
            (
                "marbleInjector",
                object([("start", .bool(!disableAutoInjection)), ("resourceKey", .string(resourceKey))])
            ),
            (
                "tolerations",
                .array([
                    object([
                        ("key", .string(resourceKey)), ("operator", .string("Exists")),
                        ("effect", .string("NoSchedule")),
                    ])
                ])
            ),
            (
                "dcap",
                object([("pccsUrl", .string(dcapPccsUrl)), ("useSecureCert", .string(dcapSecureCert.uppercased()))])
            ),
        ])
        return String(decoding: values.serialized(), as: UTF8.self) + "\n"
    }

    func chart() throws -> String {
        let path =
            marblerunChartPath ?? ProcessInfo.processInfo.environment["MARBLERUN_CHART"].flatMap {
                $0.isEmpty ? nil : $0
            }
            ?? "charts/marblerun"
        guard
            FileManager.default.fileExists(atPath: URL(fileURLWithPath: path).appendingPathComponent("Chart.yaml").path)
        else {
            throw CLIError(
                "no chart at \(path): give its directory with --marblerun-chart-path (charts/marblerun of this project)"
            )
        }
        return path
    }

    func run() async throws {
        let chart = try chart()
        let helm = try ExternalTool.find("helm", variable: "HELM", purpose: "marblerun install")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent(
            "marblerun-values-\(UUID().uuidString).yaml")
        try Data(try values().utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let common = [chart, "--namespace", namespace, "-f", file.path]
        if dryRun {
            try await helm.run(["template", "marblerun"] + common)
            return
        }
        printError(
            "installing MarbleRun into namespace \(namespace) with \(helm.url.path)\(simulation ? " (SIMULATION: no enclave)" : "")"
        )
        try await helm.run(
            ["upgrade", "--install", "marblerun"] + common + ["--create-namespace"] + (wait ? ["--wait"] : []))
        print("MarbleRun installed in namespace \(namespace). Next: marblerun status, then marblerun manifest set.")
    }
}

/// `marblerun uninstall`
struct UninstallCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "uninstall", abstract: "Remove MarbleRun from a Kubernetes cluster (helm uninstall marblerun).",
        discussion: "The Coordinator's volume claim goes with it, and with it the sealed state, unless you keep a copy."
    )

    @Option(name: [.short, .long], help: "The namespace MarbleRun was installed into.")
    var namespace = "marblerun"

    func run() async throws {
        let helm = try ExternalTool.find("helm", variable: "HELM", purpose: "marblerun uninstall")
        try await helm.run(["uninstall", "marblerun", "--namespace", namespace])
        print("MarbleRun uninstalled from namespace \(namespace).")
    }
}

/// `marblerun precheck`: whether the cluster's nodes offer SGX, through the user's kubectl.
struct PrecheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "precheck", abstract: "Check that the cluster has nodes with SGX resources (kubectl get nodes).",
        discussion: """
            Lists the nodes whose allocatable resources include an SGX device plugin's (Intel's \
            sgx.intel.com/epc, Azure's kubernetes.azure.com/sgx_epc_mem_in_MiB, Alibaba's \
            alibabacloud.com/sgx_epc_MiB). Without any, install a device plugin, or install with --simulation.
            """)

    static let resourceKeys = [
        "sgx.intel.com/epc", "kubernetes.azure.com/sgx_epc_mem_in_MiB", "alibabacloud.com/sgx_epc_MiB",
    ]

    func run() async throws {
        let kubectl = try ExternalTool.find("kubectl", variable: "KUBECTL", purpose: "marblerun precheck")
        let data = try await kubectl.run(["get", "nodes", "-o", "json"], capture: true)
        struct Nodes: Decodable {
            struct Node: Decodable {
                struct Metadata: Decodable { var name: String }
                struct Status: Decodable { var allocatable: [String: String]? }
                var metadata: Metadata
                var status: Status?
            }
            var items: [Node]
        }
        let nodes: Nodes
        do {
            nodes = try JSONDecoder().decode(Nodes.self, from: data)
        } catch {
            throw CLIError("kubectl get nodes did not answer a node list: \(error)")
        }
        var found = 0
        for node in nodes.items {
            let resources = Self.resourceKeys.compactMap { key in
                node.status?.allocatable?[key].flatMap { $0 == "0" ? nil : "\(key)=\($0)" }
            }
            if !resources.isEmpty {
                found += 1
                print("\(node.metadata.name): \(resources.joined(separator: ", "))")
            }
        }
        guard found > 0 else {
            throw CLIError(
                "none of the cluster's \(nodes.items.count) node(s) offers SGX resources: install an SGX device plugin (e.g. Intel's), or run marblerun install --simulation"
            )
        }
        print("\(found) of \(nodes.items.count) node(s) can run SGX enclaves.")
    }
}
