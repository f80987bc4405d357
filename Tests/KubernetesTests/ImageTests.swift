import Attestation
import CoordinatorTesting
import Foundation
import Testing

/// The images `deploy/images/build-images` makes, run under podman (host network, every
/// connection on 127.0.0.1, read-only root filesystem, non-root): the Coordinator image
/// answers `/api/v2/status`, and a marble image built `FROM` the marble base image (the
/// launcher, plus a busybox script as the program) is attested and activated by it.
@Suite(.serialized) struct ImageTests {
    static let containersConf = TestData.packageRoot.appendingPathComponent("deploy/images/containers.conf").path

    @discardableResult
    static func run(_ tool: String, _ arguments: [String], allowFailure: Bool = false) async throws
        -> ProcessRunner.Result
    {
        let result = try await ProcessRunner.run(
            URL(fileURLWithPath: "/usr/bin/env"), ["CONTAINERS_CONF=\(containersConf)", tool] + arguments)
        if !allowFailure, result.status != 0 {
            Issue.record("\(tool) \(arguments.joined(separator: " ")) failed (\(result.status)): \(result.stderr)")
        }
        return result
    }

    /// `podman run` in the foreground, its output in `log`, as the tests run the Coordinator
    /// binary. It ends when the container is removed.
    static func start(log: URL, _ arguments: [String]) throws -> Process {
        try Data().write(to: log)
        let handle = try FileHandle(forWritingTo: log)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["CONTAINERS_CONF=\(containersConf)", "podman"] + arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }

    /// Removes the images and containers a killed test run left (tags `test-…`), which would hold
    /// ports and disk.
    static func removeLeftovers(containerPrefix: String) async throws {
        let stale = try await run(
            "podman", ["ps", "-a", "-q", "--filter", "name=\(containerPrefix)"], allowFailure: true)
        for id in stale.stdout.split(separator: "\n") where !id.isEmpty {
            try await run("podman", ["rm", "-f", String(id)], allowFailure: true)
        }
        let images = try await run(
            "podman",
            [
                "images", "--format", "{{.Repository}}:{{.Tag}}", "--filter",
                "reference=localhost/marblerun-swift/*:test-*",
            ], allowFailure: true)
        for image in images.stdout.split(separator: "\n") where !image.isEmpty {
            try await run("podman", ["rmi", "-f", String(image)], allowFailure: true)
        }
    }

    /// A fresh image tag (`test-…`), once podman and buildah are known to be here.
    static func newTag() throws -> String {
        for tool in ["podman", "buildah"] {
            try #require(
                FileManager.default.isExecutableFile(atPath: "/usr/bin/\(tool)"),
                "no \(tool): ./scripts/test installs podman, buildah, runc and busybox-static")
        }
        return "test-\(UUID().uuidString.prefix(8).lowercased())"
    }

    @Test func theCoordinatorImageActivatesAMarbleFromTheMarbleBaseImage() async throws {
        let tag = try Self.newTag()
        let repository = "localhost/marblerun-swift"
        let products = TestData.product("coordinator").deletingLastPathComponent().path
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("images-\(tag)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let data = work.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        // The images run as 65532: the Coordinator's seal directory must be theirs to write.
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: data.path)
        let coordinatorName = "marblerun-test-coordinator-\(tag)"
        defer {
            _ = try? ProcessRunner.runBlocking(
                URL(fileURLWithPath: "/usr/bin/env"),
                ["CONTAINERS_CONF=\(Self.containersConf)", "podman", "rm", "-f", coordinatorName])
            for image in ["coordinator", "marble-injector", "marble", "hello-marble"] {
                _ = try? ProcessRunner.runBlocking(
                    URL(fileURLWithPath: "/usr/bin/env"),
                    ["CONTAINERS_CONF=\(Self.containersConf)", "podman", "rmi", "-f", "\(repository)/\(image):\(tag)"])
            }
            try? FileManager.default.removeItem(at: work)
        }

        try await Self.removeLeftovers(containerPrefix: "marblerun-test-")
        let script = TestData.packageRoot.appendingPathComponent("deploy/images/build-images").path
        let built = try await Self.run(script, ["--binaries", products, "--tag", tag])
        try #require(built.status == 0)
        for image in ["coordinator", "marble-injector", "marble"] {
            #expect(built.stdout.contains("\(repository)/\(image):\(tag)"), "\(built.stdout)")
            let inspect = try await Self.run(
                "podman",
                [
                    "image", "inspect", "--format",
                    "{{.Config.User}} {{index .Labels \"org.opencontainers.image.revision\"}}",
                    "\(repository)/\(image):\(tag)",
                ])
            #expect(inspect.stdout.hasPrefix("65532:65532 "), "\(image) runs as non-root: \(inspect.stdout)")
            #expect(!inspect.stdout.contains("unknown"), "\(image) names its revision")
        }

        // A user's marble image: the base image's launcher in front of a program of theirs.
        let context = work.appendingPathComponent("hello")
        try FileManager.default.createDirectory(at: context, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "/bin/busybox", toPath: context.appendingPathComponent("busybox").path)
        let program = context.appendingPathComponent("hello.sh")
        try Data("#!/bin/busybox sh\necho \"hello from $EDG_MARBLE_TYPE: $GREETING\"\n".utf8).write(to: program)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: program.path)
        try Data(
            """
            FROM \(repository)/marble:\(tag)
            COPY busybox /bin/busybox
            COPY hello.sh /app/hello.sh
            ENTRYPOINT ["/usr/bin/marble", "run", "--", "/app/hello.sh"]

            """.utf8
        ).write(to: context.appendingPathComponent("Containerfile"))
        try await Self.run("buildah", ["bud", "--quiet", "-t", "\(repository)/hello-marble:\(tag)", context.path])

        let (clientPort, meshPort) = (31_410, 31_411)
        let container = try Self.start(
            log: work.appendingPathComponent("podman-run.log"),
            [
                "run", "--rm", "--name", coordinatorName, "--network", "host", "--read-only", "--tmpfs", "/tmp",
                "-v", "\(data.path):/coordinator/data", "-e", "EDG_COORDINATOR_CLIENT_ADDR=127.0.0.1:\(clientPort)",
                "-e", "EDG_COORDINATOR_MESH_ADDR=127.0.0.1:\(meshPort)",
                "-e", "EDG_COORDINATOR_SIMULATION=/coordinator/data/simulation",
                "-e", "EDG_COORDINATOR_DNS_NAMES=localhost,127.0.0.1", "\(repository)/coordinator:\(tag)",
            ])
        let deadline = ContinuousClock.now + .seconds(60)
        var probes = 0
        var status: ProcessRunner.Result?
        while ContinuousClock.now < deadline || probes < 30 {
            probes += 1
            status = try await ProcessRunner.run(
                URL(fileURLWithPath: "/usr/bin/curl"),
                ["-sk", "--max-time", "5", "https://127.0.0.1:\(clientPort)/api/v2/status"])
            if status?.stdout.contains("ready to accept a manifest") == true { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        let logs = String(
            decoding: (try? Data(contentsOf: work.appendingPathComponent("podman-run.log"))) ?? Data(), as: UTF8.self)
        try #require(
            status?.stdout.contains("\"code\":2") == true && container.isRunning,
            "the Coordinator image did not answer: \(logs)")

        let uniqueID = Hex.encode(try SimulatedEnclave.uniqueID(of: program))
        let manifest =
            #"{"Packages": {"hello": {"UniqueID": "\#(uniqueID)"}}, "Marbles": {"hello": {"Package": "hello", "Parameters": {"Env": {"GREETING": "from the manifest"}}}}}"#
        let set = try await ProcessRunner.run(
            URL(fileURLWithPath: "/usr/bin/curl"),
            [
                "-sk", "--max-time", "10", "-X", "POST", "https://127.0.0.1:\(clientPort)/api/v2/manifest",
                "--data-binary",
                #"{"manifest": "\#(Data(manifest.utf8).base64EncodedString())"}"#,
            ])
        try #require(set.stdout.contains("\"status\":\"success\""), "\(set.stdout)")

        // The marble checks the Coordinator by its quote against an era config (its binary's measurement).
        let era = work.appendingPathComponent("era.json")
        // The image's binary, as built into it (stripped of debug information), is what is measured.
        let extracted = work.appendingPathComponent("coordinator-from-image")
        let copy = "marblerun-test-copy-\(tag)"
        try await Self.run("podman", ["create", "--name", copy, "\(repository)/coordinator:\(tag)"])
        try await Self.run("podman", ["cp", "\(copy):/usr/bin/coordinator", extracted.path])
        try await Self.run("podman", ["rm", copy])
        let coordinatorID = Hex.encode(try SimulatedEnclave.uniqueID(of: extracted))
        try Data(#"{"coordinator": {"UniqueID": "\#(coordinatorID)"}}"#.utf8).write(to: era)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: era.path)
        let marble = try await Self.run(
            "podman",
            [
                "run", "--rm", "--network", "host", "--read-only", "--tmpfs", "/tmp", "-v", "\(data.path):/sim:ro",
                "-v", "\(era.path):/etc/marblerun/era.json:ro", "-e", "EDG_MARBLE_TYPE=hello",
                "-e", "EDG_MARBLE_COORDINATOR_ADDR=localhost:\(meshPort)",
                "-e", "EDG_MARBLE_COORDINATOR_CLIENT_ADDR=localhost:\(clientPort)",
                "-e", "EDG_MARBLE_COORDINATOR_ERA_CONFIG=/etc/marblerun/era.json", "-e",
                "EDG_MARBLE_UUID_FILE=/tmp/uuid",
                "-e", "EDG_MARBLE_SIMULATION=/sim/simulation", "\(repository)/hello-marble:\(tag)",
            ])
        #expect(marble.stdout.contains("hello from hello: from the manifest"), "\(marble.stdout) \(marble.stderr)")
        #expect(marble.stderr.contains("marble: activated as"), "\(marble.stderr)")
    }
}
