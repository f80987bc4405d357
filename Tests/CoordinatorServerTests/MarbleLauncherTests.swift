import Attestation
import Foundation
import ManifestTesting
import Testing

/// The real `marble` launcher in front of a program nobody changed (a shell script): the
/// program's own identity is attested, and it starts as the same process with its files,
/// environment and arguments.
@Suite struct MarbleLauncherTests {
    static let launcher = CoordinatorProcess.product("marble")

    /// Runs the launcher; returns its PID, exit status and output.
    static func launch(_ arguments: [String], environment: [String: String]) async throws -> (
        pid: Int32, status: Int32, stdout: String, stderr: String
    ) {
        let process = Process()
        process.executableURL = launcher
        process.arguments = arguments
        process.environment = environment
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let exited = AsyncStream<Int32>.makeStream()
        process.terminationHandler = { exited.continuation.yield($0.terminationStatus) }
        try process.run()
        let pid = process.processIdentifier
        let output = Task.detached { String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) }
        let errors = Task.detached { String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) }
        let status = await exited.stream.first { _ in true } ?? -1
        return (pid, status, await output.value, await errors.value)
    }

    @Test func theProgramIsAttestedAndBecomesTheMarble() async throws {
        let coordinator = try CoordinatorProcess()
        try await coordinator.start(extraArguments: ["--dns-names", "localhost,127.0.0.1"])
        let directory = coordinator.directory
        let program = directory.appendingPathComponent("program.sh")
        try Data(
            """
            #!/bin/sh
            echo "pid=$$"
            echo "args=$*"
            echo "greeting=$GREETING"
            echo "file=$(cat \(directory.path)/etc/app/key.hex)"
            stat -c 'mode=%a' \(directory.path)/etc/app/key.hex

            """.utf8
        ).write(to: program)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: program.path)
        let uniqueID = Hex.encode(try SimulatedEnclave.uniqueID(of: program))
        let manifest = """
            {
              "Packages": {"app": {"UniqueID": "\(uniqueID)"}},
              "Marbles": {"app": {"Package": "app", "Parameters": {
                "Files": {"\(directory.path)/etc/app/key.hex": "{{ hex .Secrets.key }}"},
                "Env": {"GREETING": "hello from the manifest"},
                "Argv": ["program.sh", "--from", "manifest"]}}},
              "Secrets": {"key": {"Type": "symmetric-key", "Size": 128}}
            }
            """
        let set = try await coordinator.request(
            "POST", "/api/v2/manifest", body: #"{"manifest":"\#(Data(manifest.utf8).base64EncodedString())"}"#)
        try #require(set.status == 200, "\(set.json)")
        let root = try await RecoveryAPITests.root(coordinator).serializeAsPEM().pemString
        let rootFile = try CoordinatorBinaryTests.write(root, "root.pem", in: directory)
        var environment = ProcessInfo.processInfo.environment
        environment["EDG_MARBLE_TYPE"] = "app"
        environment["EDG_MARBLE_COORDINATOR_ADDR"] = "localhost:\(coordinator.meshPort)"
        environment["EDG_MARBLE_UUID_FILE"] = directory.appendingPathComponent("uuid").path
        environment["EDG_MARBLE_COORDINATOR_ROOT_CA"] = rootFile
        let simulation = ["run", "--simulation", coordinator.simulationDirectory.path, "--"]

        let run = try await Self.launch(
            simulation + [program.path, "--from", "command line"], environment: environment)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("pid=\(run.pid)"), "the program is the launcher's process: \(run.stdout)")
        #expect(run.stdout.contains("args=--from manifest"))
        #expect(run.stdout.contains("greeting=hello from the manifest"))
        #expect(run.stdout.contains("mode=600"))
        let key = run.stdout.split(separator: "\n").first { $0.hasPrefix("file=") }.map { String($0.dropFirst(5)) }
        #expect(key?.count == 32, "a 128-bit key in hex: \(run.stdout)")

        // Restarted, it keeps its UUID and its derived key.
        let again = try await Self.launch(simulation + [program.path], environment: environment)
        #expect(again.stdout.contains("file=\(key ?? "")"), "\(again.stderr)")

        // Another program is not the package: refused, with the Coordinator's reason, non-zero.
        let other = directory.appendingPathComponent("other.sh")
        try Data("#!/bin/sh\necho never\n".utf8).write(to: other)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: other.path)
        environment["EDG_MARBLE_UUID_FILE"] = directory.appendingPathComponent("other-uuid").path
        let refused = try await Self.launch(simulation + [other.path], environment: environment)
        #expect(refused.status != 0 && !refused.stdout.contains("never"))
        #expect(refused.stderr.contains("permissionDenied") || refused.stderr.contains("refused"), "\(refused.stderr)")
        #expect(await coordinator.stop() == 0)
    }
}
