import CoordinatorTesting
import Foundation
import Testing

/// `marblerun install`, `uninstall` and `precheck` driving Helm and kubectl: the real Helm
/// (`scripts/fetch-helm`) renders `install --dry-run`; stand-in `helm` and `kubectl` scripts
/// record what they are asked and answer as a cluster would; a missing tool is named.
@Suite struct KubernetesCLITests {
    static let helm = TestData.packageRoot.appendingPathComponent(".build-tools/helm").path
    static let chart = TestData.packageRoot.appendingPathComponent("charts/marblerun").path

    static func run(_ arguments: [String], environment: [String: String]) async throws -> ProcessRunner.Result {
        let assignments = environment.map { "\($0.key)=\($0.value)" }
        return try await ProcessRunner.run(
            URL(fileURLWithPath: "/usr/bin/env"), assignments + [CLIRunner.binary.path] + arguments)
    }

    @Test func installDryRunRendersTheChartWithMarbleRunsFlags() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.helm), "run scripts/fetch-helm")
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("install-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        // Quotes, a backslash (a JSON escape) and a newline: the era config must reach the ConfigMap byte for byte.
        let era = work.appendingPathComponent("era.json")
        try Data(
            #"{"coordinator": {"UniqueID": "\u0061b12000000000000000000000000000000000000000000000000000000000000", "Debug": false}}"#
                .utf8 + [0x0a]
        ).write(to: era)
        let simulated = try await Self.run(
            [
                "install", "--simulation", "--dry-run", "--marblerun-chart-path", Self.chart, "--domain",
                "coordinator.example", "--era-config", era.path,
            ],
            environment: ["HELM": Self.helm])
        #expect(simulated.status == 0, "\(simulated.stderr)")
        #expect(simulated.stdout.contains("name: EDG_COORDINATOR_SIMULATION"))
        #expect(simulated.stdout.contains("name: marble-injector"), "the injector by default")
        #expect(simulated.stdout.contains("coordinator.example,coordinator-mesh-api"))
        #expect(!simulated.stdout.contains("sgx.intel.com/enclave"), "no SGX resources in simulation")
        #expect(
            simulated.stdout.contains(
                #"era.json: "{\"coordinator\": {\"UniqueID\": \"\\u0061b12000000000000000000000000000000000000000000000000000000000000\", \"Debug\": false}}\n""#
            ),
            "\(simulated.stdout)")
        #expect(simulated.stdout.contains("--trust-file=/etc/marblerun/trust/era.json"))
        let notJSON = work.appendingPathComponent("era.yaml")
        try Data("coordinator:\n  UniqueID: ab12\n".utf8).write(to: notJSON)
        let notAnEraConfig = work.appendingPathComponent("short.json")
        try Data(#"{"coordinator": {"UniqueID": "ab12"}}"#.utf8).write(to: notAnEraConfig)
        for file in [notJSON.path, notAnEraConfig.path, work.appendingPathComponent("missing.json").path] {
            let refused = try await Self.run(
                ["install", "--simulation", "--dry-run", "--marblerun-chart-path", Self.chart, "--era-config", file],
                environment: ["HELM": Self.helm])
            #expect(refused.status != 0 && refused.stderr.contains("era config"), "\(refused.stderr)")
        }

        let azure = try await Self.run(
            [
                "install", "--dry-run", "--marblerun-chart-path", Self.chart, "--resource-key",
                "kubernetes.azure.com/sgx_epc_mem_in_MiB", "--disable-auto-injection", "--replicas", "3",
                "--store-url-secret", "marblerun-store", "--client-server-port", "8443", "--dcap-pccs-url",
                "https://pccs.example:8081/sgx/certification/v4/", "--dcap-secure-cert", "FALSE", "-n", "confidential",
            ], environment: ["HELM": Self.helm])
        #expect(azure.status == 0, "\(azure.stderr)")
        #expect(azure.stdout.contains("replicas: 3") && azure.stdout.contains("name: marblerun-store"))
        #expect(azure.stdout.contains("kubernetes.azure.com/sgx_epc_mem_in_MiB: \"10\""), "\(azure.stdout)")
        #expect(!azure.stdout.contains("sgx.intel.com/epc"), "only the Azure key")
        #expect(!azure.stdout.contains("name: marble-injector"))
        #expect(azure.stdout.contains("namespace: confidential") && azure.stdout.contains("0.0.0.0:8443"))
        #expect(azure.stdout.contains(#""use_secure_cert": false"#) && azure.stdout.contains("pccs.example:8081"))
    }

    @Test func installAndUninstallRunHelmAndEveryMissingToolIsNamed() async throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("kube-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let record = work.appendingPathComponent("calls")
        // A stand-in helm: records its arguments and the values file it was given.
        let fakeHelm = work.appendingPathComponent("helm")
        try Data(
            """
            #!/bin/sh
            echo "$@" >> \(record.path)
            while [ $# -gt 0 ]; do [ "$1" = "-f" ] && cat "$2" >> \(record.path); shift; done
            exit 0

            """.utf8
        ).write(to: fakeHelm)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: fakeHelm.path)
        let install = try await Self.run(
            ["install", "--marblerun-chart-path", Self.chart, "--wait"], environment: ["HELM": fakeHelm.path])
        #expect(install.status == 0, "\(install.stderr)")
        let uninstall = try await Self.run(["uninstall"], environment: ["HELM": fakeHelm.path])
        #expect(uninstall.status == 0, "\(uninstall.stderr)")
        let calls = try String(contentsOf: record, encoding: .utf8)
        #expect(calls.contains("upgrade --install marblerun \(Self.chart) --namespace marblerun -f "), "\(calls)")
        #expect(calls.contains("--create-namespace --wait"))
        #expect(calls.contains(#""start":true"#) && calls.contains(#""simulation":false"#), "\(calls)")
        #expect(calls.contains("uninstall marblerun --namespace marblerun"))

        let noHelm = try await Self.run(
            ["install", "--marblerun-chart-path", Self.chart],
            environment: ["PATH": work.appendingPathComponent("empty").path])
        #expect(noHelm.status != 0 && noHelm.stderr.contains("needs helm"), "\(noHelm.stderr)")
        let noChart = try await Self.run(
            ["install", "--marblerun-chart-path", work.path], environment: ["HELM": fakeHelm.path])
        #expect(noChart.status != 0 && noChart.stderr.contains("no chart at"), "\(noChart.stderr)")
        let replicas = try await Self.run(["install", "--replicas", "3"], environment: ["HELM": fakeHelm.path])
        #expect(replicas.status != 0 && replicas.stderr.contains("--store-url-secret"), "\(replicas.stderr)")
        let noKubectl = try await Self.run(
            ["precheck"], environment: ["PATH": work.appendingPathComponent("empty").path])
        #expect(noKubectl.status != 0 && noKubectl.stderr.contains("needs kubectl"), "\(noKubectl.stderr)")
    }

    @Test func precheckNamesTheNodesWithSGXResources() async throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("precheck-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        func kubectl(_ nodes: String) throws -> String {
            let json = work.appendingPathComponent("nodes-\(UUID().uuidString).json")
            try Data(nodes.utf8).write(to: json)
            let script = work.appendingPathComponent("kubectl-\(UUID().uuidString)")
            try Data("#!/bin/sh\n[ \"$*\" = \"get nodes -o json\" ] || exit 3\ncat \(json.path)\n".utf8).write(
                to: script)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
            return script.path
        }
        let mixed = try kubectl(
            #"{"items": [{"metadata": {"name": "sgx-1"}, "status": {"allocatable": {"cpu": "4", "sgx.intel.com/epc": "64Mi"}}}, {"metadata": {"name": "plain"}, "status": {"allocatable": {"cpu": "8"}}}, {"metadata": {"name": "azure-1"}, "status": {"allocatable": {"kubernetes.azure.com/sgx_epc_mem_in_MiB": "168"}}}]}"#
        )
        let found = try await Self.run(["precheck"], environment: ["KUBECTL": mixed])
        #expect(found.status == 0, "\(found.stderr)")
        #expect(found.stdout.contains("sgx-1: sgx.intel.com/epc=64Mi") && found.stdout.contains("azure-1:"))
        #expect(!found.stdout.contains("plain") && found.stdout.contains("2 of 3 node(s)"))
        let none = try await Self.run(
            ["precheck"],
            environment: [
                "KUBECTL": try kubectl(
                    #"{"items": [{"metadata": {"name": "plain"}, "status": {"allocatable": {"cpu": "8"}}}]}"#)
            ])
        #expect(none.status != 0 && none.stderr.contains("--simulation"), "\(none.stderr)")
        let garbage = try await Self.run(["precheck"], environment: ["KUBECTL": try kubectl("not json")])
        #expect(garbage.status != 0 && garbage.stderr.contains("did not answer a node list"), "\(garbage.stderr)")
    }
}
