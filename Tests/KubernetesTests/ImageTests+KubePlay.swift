import Attestation
import CoordinatorTesting
import Foundation
import JSONText
import Testing

/// The rendered charts under `podman kube play` (no API server here): the marblerun chart with
/// simulation values and one Coordinator, then the emojivoto chart's Deployments with the real
/// marble-injector's patches applied to their pods first, the manifest set with the CLI as
/// README says, and votes counted by the voting marble that web calls over mutual TLS.
///
/// What podman 4.3 cannot play is stood in for, by `Tests/Support/kube_play.py`, and named
/// here: Services, ServiceAccounts and the claim are dropped (host network, one host; the seal
/// directory is a hostPath), and a downward-API volume becomes a hostPath directory holding
/// what the kubelet would project (a fresh UUID for `metadata.uid`, an annotation's value).
extension ImageTests {
    static let coordinatorPorts = (client: 31_420, mesh: 31_421)
    static let emojivotoPorts = (web: 31_422, emoji: 31_423, voting: 31_424)
    static let injectorPort = 31_425

    /// `podman kube play` from `directory` (podman looks for a build context named like each
    /// image in its working directory).
    static func kubePlay(_ arguments: [String], in directory: URL, allowFailure: Bool = false) async throws
        -> ProcessRunner.Result
    {
        try await run(
            "env", ["-C", directory.path, "CONTAINERS_CONF=\(containersConf)", "podman", "kube", "play"] + arguments,
            allowFailure: allowFailure)
    }

    @Test func theChartsRunUnderPodmanKubePlayAndEmojivotoCountsVotesOverMutualTLS() async throws {
        let tag = try Self.newTag()
        let repository = "localhost/marblerun-swift"
        let products = TestData.product("coordinator").deletingLastPathComponent()
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("kube-play-\(tag)")
        let (seal, platform, projections) = (
            work.appendingPathComponent("seal"), work.appendingPathComponent("platform"),
            work.appendingPathComponent("projections")
        )
        for directory in [seal, platform, projections] {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        }
        // The containers run as 65532: the seal directory and the platform must be theirs to write.
        for directory in [seal, platform] {
            try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: directory.path)
        }
        let coordinatorYAML = work.appendingPathComponent("coordinator.yaml")
        let emojivotoYAML = work.appendingPathComponent("emojivoto.yaml")
        // Pods a killed run left behind would hold the ports.
        let pods = ["marblerun-coordinator-pod-0", "web-pod-0", "emoji-pod-0", "voting-pod-0"]
        try await Self.run("podman", ["pod", "rm", "-f", "--ignore"] + pods, allowFailure: true)
        try await Self.removeLeftovers(containerPrefix: "marblerun-test-")
        defer {
            let env = URL(fileURLWithPath: "/usr/bin/env")
            _ = try? ProcessRunner.runBlocking(
                env, ["CONTAINERS_CONF=\(Self.containersConf)", "podman", "pod", "rm", "-f", "--ignore"] + pods)
            for image in ["coordinator", "marble", "emojivoto-web", "emojivoto-emoji", "emojivoto-voting"] {
                _ = try? ProcessRunner.runBlocking(
                    env,
                    ["CONTAINERS_CONF=\(Self.containersConf)", "podman", "rmi", "-f", "\(repository)/\(image):\(tag)"])
            }
            try? FileManager.default.removeItem(at: work)
        }

        let script = TestData.packageRoot.appendingPathComponent("deploy/images/build-images").path
        let built = try await Self.run(
            script, ["--binaries", products.path, "--tag", tag, "coordinator", "marble", "emojivoto"])
        try #require(built.status == 0)
        #expect(built.stdout.contains("\(repository)/emojivoto-voting:\(tag)"), "\(built.stdout)")
        let entrypoint = try await Self.run(
            "podman",
            ["image", "inspect", "--format", "{{json .Config.Entrypoint}}", "\(repository)/emojivoto-web:\(tag)"])
        #expect(entrypoint.stdout.contains(#"["/usr/bin/marble","run","--","/usr/bin/emojivoto-web"]"#))

        // The era config: the UniqueID of the Coordinator binary inside its image, by the script
        // README gives, checked against the binary copied out here.
        let era = work.appendingPathComponent("era.json")
        try await Self.run(
            TestData.packageRoot.appendingPathComponent("deploy/images/era-config").path,
            ["--tag", tag, "-o", era.path])
        let extracted = work.appendingPathComponent("coordinator-binary")
        let copy = "marblerun-test-copy-\(tag)"
        try await Self.run("podman", ["create", "--name", copy, "\(repository)/coordinator:\(tag)"])
        try await Self.run("podman", ["cp", "\(copy):/usr/bin/coordinator", extracted.path])
        try await Self.run("podman", ["rm", copy])
        let eraConfig = String(decoding: try Data(contentsOf: era), as: UTF8.self)
        #expect(
            eraConfig
                == #"{"coordinator": {"UniqueID": "\#(Hex.encode(try SimulatedEnclave.uniqueID(of: extracted)))"}}"#
                + "\n")

        // 1. The marblerun chart: simulation, one Coordinator, on the host's loopback.
        let (client, mesh) = Self.coordinatorPorts
        let rendered = work.appendingPathComponent("marblerun-rendered.yaml")
        let marblerun = try await ChartTests.helm([
            "template", "marblerun", ChartTests.chart.path, "-n", "marblerun", "--set", "coordinator.simulation=true",
            "--set", "coordinator.hostNetwork=true", "--set-string",
            "coordinator.clientServerHost=127.0.0.1,coordinator.meshServerHost=127.0.0.1,coordinator.version=\(tag),coordinator.simulationHostPath=\(platform.path)",
            "--set", "coordinator.clientServerPort=\(client),coordinator.meshServerPort=\(mesh)", "--set-file",
            "coordinator.eraConfig=\(era.path)",
        ])
        try #require(marblerun.status == 0, "\(marblerun.stderr)")
        try Data(marblerun.stdoutData).write(to: rendered)
        let kubePlay = TestData.packageRoot.appendingPathComponent("Tests/Support/kube_play.py").path
        let prepared = try await ProcessRunner.run(
            TestData.python, [kubePlay, "coordinator", rendered.path, coordinatorYAML.path, seal.path])
        try #require(prepared.status == 0, "\(prepared.stderr)")
        let played = try await Self.kubePlay([coordinatorYAML.path], in: work)
        try #require(played.status == 0)
        let status = try await Self.poll("the Coordinator's status") {
            let answer = try await ProcessRunner.run(
                URL(fileURLWithPath: "/usr/bin/curl"),
                ["-sk", "--max-time", "5", "https://127.0.0.1:\(client)/api/v2/status"])
            return answer.stdout.contains("\"code\":2") ? answer.stdout : nil
        }
        if status == nil {
            Issue.record("the Coordinator pod: \(try await Self.logs("marblerun-coordinator-pod-0-coordinator"))")
        }
        try #require(status != nil, "the Coordinator pod did not answer")

        // 2. emojivoto's Deployments, each pod as the marble-injector (the real binary) answers for it.
        let ports = Self.emojivotoPorts
        let emojivotoRendered = work.appendingPathComponent("emojivoto-rendered.yaml")
        let emojivoto = try await ChartTests.helm([
            "template", "emojivoto", TestData.packageRoot.appendingPathComponent("Examples/emojivoto/kubernetes").path,
            "-n", "emojivoto", "--set", "hostNetwork=true", "--set-string", "tag=\(tag),dnsNames=localhost", "--set",
            "ports.web=\(ports.web),ports.emoji=\(ports.emoji),ports.voting=\(ports.voting)",
        ])
        try #require(emojivoto.status == 0, "\(emojivoto.stderr)")
        try Data(emojivoto.stdoutData).write(to: emojivotoRendered)
        let templates = try await ProcessRunner.run(TestData.python, [kubePlay, "pods", emojivotoRendered.path])
        try #require(templates.status == 0, "\(templates.stderr)")
        let marblePods = try JSONParser().parse(Array(templates.stdoutData)).arrayValue ?? []
        #expect(marblePods.compactMap { $0["name"]?.stringValue }.sorted() == ["emoji", "voting", "web"])
        let patches = try await Self.injectorPatches(
            for: marblePods, work: work,
            arguments: [
                "--coordinator-address", "localhost:\(mesh)", "--trust-file", era.path, "--coordinator-client-address",
                "localhost:\(client)", "--simulation-platform", platform.path,
            ])
        let patchesFile = work.appendingPathComponent("patches.json")
        try Data(JSONValue.object(patches.map { JSONMember($0.key, $0.value) }).serialized()).write(to: patchesFile)
        let applied = try await ProcessRunner.run(
            TestData.python,
            [kubePlay, "marbles", emojivotoRendered.path, patchesFile.path, emojivotoYAML.path, projections.path])
        try #require(applied.status == 0, "\(applied.stderr)")
        let report = try JSONParser().parse(Array(applied.stdoutData))
        for name in ["web", "emoji", "voting"] {
            #expect(report[name]?["errors"]?.objectValue?.isEmpty == true, "\(name): \(report[name] ?? .null)")
            let projected = report[name]?["projected"]?.objectValue ?? []
            #expect(
                projected.contains { $0.value.stringValue == eraConfig },
                "the era config reaches \(name) through its pod's annotation")
        }

        // 3. In README's order: the marbles start before their manifest is set, are refused, and
        // are restarted (restartPolicy Always) until it is.
        let marblesPlayed = try await Self.kubePlay([emojivotoYAML.path], in: work)
        try #require(marblesPlayed.status == 0)
        let refused = try await Self.poll("web's refusal") {
            let log = try await Self.logs("web-pod-0-web")
            return log.contains("no manifest is set yet") ? log : nil
        }
        #expect(refused != nil, "web was not refused before its manifest was set")
        // make-manifest reads the programs out of the images.
        let manifest = work.appendingPathComponent("manifest.json")
        let made = try await Self.run(
            TestData.packageRoot.appendingPathComponent("Examples/emojivoto/kubernetes/make-manifest").path,
            [
                "--tag", tag, "--listen-host", "127.0.0.1", "--emoji-host", "localhost", "--voting-host", "localhost",
                "--ports", "\(ports.web),\(ports.emoji),\(ports.voting)", "-o", manifest.path,
            ])
        try #require(made.status == 0)
        let root = work.appendingPathComponent("root.pem")
        let set = try await ProcessRunner.run(
            TestData.product("marblerun"),
            [
                "manifest", "set", manifest.path, "localhost:\(client)", "--era-config", era.path, "--simulation",
                platform.path, "--coordinator-cert", root.path,
            ])
        try #require(set.status == 0, "manifest set: \(set.stdout) \(set.stderr)")

        let web = "https://localhost:\(ports.web)/api"
        let board = try await Self.poll("the web marble") {
            let answer = try await ProcessRunner.run(
                URL(fileURLWithPath: "/usr/bin/curl"),
                ["-sf", "--max-time", "5", "--cacert", root.path, "\(web)/leaderboard"])
            return answer.status == 0 ? answer.stdout : nil
        }
        if board == nil {
            for name in ["web", "emoji", "voting"] {
                Issue.record("\(name): \(try await Self.logs("\(name)-pod-0-\(name)"))")
            }
        }
        try #require(board != nil)
        for name in ["web", "emoji", "voting"] {
            let log = try await Self.logs("\(name)-pod-0-\(name)")
            #expect(log.contains("marble: activated as"), "\(name): \(log)")
        }
        for choice in [":doughnut:", ":rocket:", ":doughnut:"] {
            let vote = try await ProcessRunner.run(
                URL(fileURLWithPath: "/usr/bin/curl"),
                ["-sf", "--max-time", "5", "--cacert", root.path, "-X", "POST", "\(web)/vote?choice=\(choice)"])
            #expect(vote.status == 0, "vote for \(choice): \(vote.stderr)")
        }
        let leaderboard = try await ProcessRunner.run(
            URL(fileURLWithPath: "/usr/bin/curl"),
            ["-sf", "--max-time", "5", "--cacert", root.path, "\(web)/leaderboard"])
        let counts = (try JSONParser().parse(Array(leaderboard.stdoutData)).arrayValue ?? []).map {
            "\($0["shortcode"]?.stringValue ?? "")=\($0["votes"]?.intValue ?? -1)"
        }
        #expect(counts == [":doughnut:=2", ":rocket:=1"], "\(leaderboard.stdout)")
        // The voting marble takes only callers with a cluster certificate: curl, with none, fails the
        // handshake (35) or gets the server's alert (56); -k, since the mesh's server names are not checked here.
        let direct = try await ProcessRunner.run(
            URL(fileURLWithPath: "/usr/bin/curl"),
            ["-s", "-k", "--max-time", "5", "https://localhost:\(ports.voting)/results"])
        #expect([35, 56].contains(direct.status), "curl without a client certificate: \(direct.status)")
    }

    /// The marble-injector binary's patch for each pod, from AdmissionReviews sent with curl.
    static func injectorPatches(for pods: [JSONValue], work: URL, arguments: [String]) async throws
        -> [String: JSONValue]
    {
        let certificates = work.appendingPathComponent("injector")
        try FileManager.default.createDirectory(at: certificates, withIntermediateDirectories: true)
        let (ca, cert, key) = try InjectorBinaryTests.certificates(in: certificates)
        let log = certificates.appendingPathComponent("injector.log")
        let process = try InjectorBinaryTests.launch(
            port: injectorPort, cert: cert, key: key, arguments: arguments, log: log)
        defer {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        let base = "https://127.0.0.1:\(injectorPort)"
        let up = try await poll("the marble-injector") {
            let health = try await InjectorBinaryTests.curl(["--cacert", ca, "\(base)/healthz"])
            return health.status == 200 ? "up" : nil
        }
        try #require(up != nil, "\(String(decoding: (try? Data(contentsOf: log)) ?? Data(), as: UTF8.self))")
        var patches: [String: JSONValue] = [:]
        for item in pods {
            let name = try #require(item["name"]?.stringValue)
            let review = JSONValue.object([
                JSONMember("apiVersion", .string("admission.k8s.io/v1")),
                JSONMember("kind", .string("AdmissionReview")),
                JSONMember(
                    "request",
                    .object([
                        JSONMember("uid", .string(UUID().uuidString.lowercased())),
                        JSONMember(
                            "kind",
                            .object([
                                JSONMember("group", .string("")), JSONMember("version", .string("v1")),
                                JSONMember("kind", .string("Pod")),
                            ])),
                        JSONMember(
                            "resource",
                            .object([
                                JSONMember("group", .string("")), JSONMember("version", .string("v1")),
                                JSONMember("resource", .string("pods")),
                            ])),
                        JSONMember("namespace", item["namespace"] ?? .string("default")),
                        JSONMember("operation", .string("CREATE")), JSONMember("object", item["pod"] ?? .null),
                    ])),
            ])
            let body = certificates.appendingPathComponent("\(name)-review.json")
            try Data(review.serialized()).write(to: body)
            let answer = try await InjectorBinaryTests.curl([
                "--cacert", ca, "-H", "Content-Type: application/json", "--data-binary", "@\(body.path)",
                "\(base)/mutate",
            ])
            let response = try JSONParser().parse(Array(answer.body.utf8))["response"]
            try #require(response?["allowed"] == .bool(true), "\(name): \(answer.body)")
            let patch = try #require(response?["patch"]?.stringValue.flatMap { Data(base64Encoded: $0) })
            patches[name] = try JSONParser().parse(Array(patch))
        }
        return patches
    }

    /// `probe`'s first answer within 90 s (and at least 30 probes), or nil.
    static func poll(_ what: String, _ probe: () async throws -> String?) async throws -> String? {
        let deadline = ContinuousClock.now + .seconds(90)
        var probes = 0
        while ContinuousClock.now < deadline || probes < 30 {
            probes += 1
            if let answer = try await probe() { return answer }
            try await Task.sleep(for: .milliseconds(300))
        }
        return nil
    }

    static func logs(_ container: String) async throws -> String {
        let logs = try await run("podman", ["logs", container], allowFailure: true)
        return logs.stdout + logs.stderr
    }
}
