import Attestation
import CoordinatorTesting
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

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

    /// A Coordinator enforcing a manifest whose only package is a small script (its SHA-256),
    /// and the launcher environment that trusts this Coordinator's root.
    static func prepare(_ coordinator: CoordinatorProcess) async throws -> (program: URL, environment: [String: String])
    {
        let directory = coordinator.directory
        let program = directory.appendingPathComponent("hello.sh")
        try Data("#!/bin/sh\necho \"hello, $GREETING\"\n".utf8).write(to: program)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: program.path)
        let uniqueID = Hex.encode(try SimulatedEnclave.uniqueID(of: program))
        let manifest = """
            {"Packages": {"app": {"UniqueID": "\(uniqueID)"}},
             "Marbles": {"app": {"Package": "app", "Parameters": {"Env": {"GREETING": "marble"}}}}}
            """
        let set = try await coordinator.request(
            "POST", "/api/v2/manifest", body: #"{"manifest":"\#(Data(manifest.utf8).base64EncodedString())"}"#)
        try #require(set.status == 200, "\(set.json)")
        let root = try await RecoveryAPITests.root(coordinator).serializeAsPEM().pemString
        var environment = ProcessInfo.processInfo.environment
        environment["EDG_MARBLE_TYPE"] = "app"
        environment["EDG_MARBLE_COORDINATOR_ADDR"] = "localhost:\(coordinator.meshPort)"
        environment["EDG_MARBLE_UUID_FILE"] = directory.appendingPathComponent("uuid").path
        environment["EDG_MARBLE_COORDINATOR_ROOT_CA"] = try CoordinatorBinaryTests.write(
            root, "root.pem", in: directory)
        return (program, environment)
    }

    @Test func aWrongCoordinatorOrNoneEndsWithAClearErrorAndTheProgramNeverRuns() async throws {
        let coordinator = try CoordinatorProcess()
        try await coordinator.start()
        let (program, environment) = try await Self.prepare(coordinator)
        let simulation = ["run", "--simulation", coordinator.simulationDirectory.path]

        // A root that is not this Coordinator's: refused at once (no retries), the program not started.
        var impostor = environment
        impostor["EDG_MARBLE_COORDINATOR_ROOT_CA"] = try CoordinatorBinaryTests.write(
            try TestCertificates.ecdsa(commonName: "MarbleRun Coordinator"), "impostor.pem", in: coordinator.directory)
        let untrusted = try await Self.launch(simulation + ["--", program.path], environment: impostor)
        #expect(untrusted.status != 0 && !untrusted.stdout.contains("hello"))
        #expect(untrusted.stderr.contains("is not the Coordinator this marble trusts"), "\(untrusted.stderr)")
        #expect(!untrusted.stderr.contains("retrying"))
        #expect(!FileManager.default.fileExists(atPath: environment["EDG_MARBLE_UUID_FILE"]!))

        // The right root works.
        let trusted = try await Self.launch(simulation + ["--", program.path], environment: environment)
        #expect(trusted.status == 0 && trusted.stdout.contains("hello, marble"), "\(trusted.stderr)")
        #expect(trusted.stderr.contains("marble: activated as"))

        // The Coordinator is down: a line per attempt, then a clear error and a non-zero exit.
        #expect(await coordinator.stop() == 0)
        let down = try await Self.launch(
            simulation + ["--timeout", "2", "--", program.path], environment: environment)
        #expect(down.status != 0 && !down.stdout.contains("hello"))
        #expect(down.stderr.contains("marble: activation attempt 1 failed"), "\(down.stderr)")
        #expect(down.stderr.contains("unreachable"), "\(down.stderr)")
    }

    @Test func withoutAPinnedRootTheCoordinatorIsTrustedByItsQuote() async throws {
        let coordinator = try CoordinatorProcess()
        try await coordinator.start()
        var (program, environment) = try await Self.prepare(coordinator)
        environment["EDG_MARBLE_COORDINATOR_ROOT_CA"] = nil
        environment["EDG_MARBLE_COORDINATOR_CLIENT_ADDR"] = "localhost:\(coordinator.clientPort)"
        let simulation = ["run", "--simulation", coordinator.simulationDirectory.path]
        let none = try await Self.launch(simulation + ["--", program.path], environment: environment)
        #expect(none.status != 0 && none.stderr.contains("say which Coordinator to trust"), "\(none.stderr)")

        let uniqueID = Hex.encode(try SimulatedEnclave.uniqueID(of: CoordinatorProcess.binary))
        environment["EDG_MARBLE_COORDINATOR_ERA_CONFIG"] = try CoordinatorBinaryTests.write(
            #"{"coordinator": {"UniqueID": "\#(uniqueID)"}}"#, "era.json", in: coordinator.directory)
        let attested = try await Self.launch(simulation + ["--", program.path], environment: environment)
        #expect(attested.status == 0 && attested.stdout.contains("hello, marble"), "\(attested.stderr)")

        // Another identity: the Coordinator's quote does not match, nothing is sent, no retries.
        var other = environment
        other["EDG_MARBLE_COORDINATOR_ERA_CONFIG"] = try CoordinatorBinaryTests.write(
            #"{"coordinator": {"UniqueID": "\#(String(repeating: "ab", count: 32))"}}"#, "other-era.json",
            in: coordinator.directory)
        other["EDG_MARBLE_UUID_FILE"] = coordinator.directory.appendingPathComponent("other-uuid").path
        let refused = try await Self.launch(simulation + ["--", program.path], environment: other)
        #expect(refused.status != 0 && !refused.stdout.contains("hello"))
        #expect(refused.stderr.contains("not the one the era config describes"), "\(refused.stderr)")
        #expect(!refused.stderr.contains("retrying"))
        #expect(!FileManager.default.fileExists(atPath: other["EDG_MARBLE_UUID_FILE"]!))

        // A malformed era config is a configuration error naming the file.
        other["EDG_MARBLE_COORDINATOR_ERA_CONFIG"] = try CoordinatorBinaryTests.write(
            #"{"coordinator": {"UniqueID": 7}}"#, "bad-era.json", in: coordinator.directory)
        let malformed = try await Self.launch(simulation + ["--", program.path], environment: other)
        #expect(malformed.status != 0 && malformed.stderr.contains("bad-era.json"), "\(malformed.stderr)")
        #expect(await coordinator.stop() == 0)
    }

    @Test func helpNamesTheEnvironmentAndGivesAnExample() async throws {
        let help = try await Self.launch(["run", "--help"], environment: [:])
        #expect(help.status == 0)
        for name in [
            "EDG_MARBLE_TYPE", "EDG_MARBLE_COORDINATOR_ADDR", "EDG_MARBLE_UUID_FILE", "EDG_MARBLE_DNS_NAMES",
            "EDG_MARBLE_COORDINATOR_ROOT_CA", "EDG_MARBLE_COORDINATOR_ERA_CONFIG", "EDG_MARBLE_SIMULATION",
            "--attestation", "--collateral", "--pccs", "Examples:",
        ] {
            #expect(help.stdout.contains(name), "\(name) in: \(help.stdout)")
        }
        let missing = try await Self.launch(["run", "--", "/bin/true"], environment: [:])
        #expect(missing.status != 0 && missing.stderr.contains("EDG_MARBLE_TYPE is not set"), "\(missing.stderr)")
        let bogus = try await Self.launch(
            ["run", "--attestation", "sgx-magic", "--", "/bin/true"], environment: [:])
        #expect(bogus.status != 0 && bogus.stderr.contains("auto"), "\(bogus.stderr)")
    }

    /// Gramine's interface, played by ``FakeGramine``: the launcher finds `quote` in the Gramine
    /// directory, writes its report data to `user_report_data`, and reads the quote the stand-in
    /// makes for exactly that report data.
    @Test func gramineAttestationIsDetectedAndUsed() async throws {
        let coordinator = try CoordinatorProcess()
        try await coordinator.start()
        let (program, environment) = try await Self.prepare(coordinator)
        let platform = try SimulatedPlatform.load(from: coordinator.simulationDirectory)
        let fake = try FakeGramine(
            directory: coordinator.directory.appendingPathComponent("attestation"), platform: platform,
            enclave: try SimulatedEnclave.measuring(executable: program, signer: platform.defaultSigner),
            signerKey: [UInt8](repeating: 1, count: 16), enclaveKey: [UInt8](repeating: 2, count: 16))
        defer { fake.stop() }
        let gramine = fake.directory
        var gramineEnvironment = environment
        gramineEnvironment["EDG_MARBLE_GRAMINE_DIR"] = gramine.path
        let run = try await Self.launch(["run", "--", program.path], environment: gramineEnvironment)
        #expect(fake.quotesServed == 1)
        #expect(run.status == 0 && run.stdout.contains("hello, marble"), "\(run.stderr)")
        #expect(run.stderr.contains("quotes from Gramine's \(gramine.path)"), "\(run.stderr)")
        #expect(!run.stderr.contains("SIMULATION"))
        #expect(fake.reportData.first?.count == 64, "report data padded to 64 bytes as Gramine expects")

        // Forced simulation ignores the Gramine directory; forced Gramine without one is an error.
        let forced = try await Self.launch(
            [
                "run", "--attestation", "simulation", "--simulation", coordinator.simulationDirectory.path, "--",
                program.path,
            ], environment: gramineEnvironment)
        #expect(forced.status == 0 && forced.stderr.contains("SIMULATION"), "\(forced.stderr)")
        var absent = environment
        absent["EDG_MARBLE_GRAMINE_DIR"] = coordinator.directory.appendingPathComponent("nothing").path
        let none = try await Self.launch(["run", "--attestation", "gramine", "--", program.path], environment: absent)
        #expect(none.status != 0 && none.stderr.contains("not a Gramine enclave"), "\(none.stderr)")
        #expect(await coordinator.stop() == 0)
    }

    /// A marble in Gramine (the stand-in) that trusts the Coordinator by an era config: it checks
    /// the Coordinator's quote with collateral from the PCCS an `sgx_default_qcnl.conf` names
    /// (QCNL_CONF_PATH), against the root `--sgx-root-ca` pins for this test platform.
    @Test func aGramineMarbleChecksTheCoordinatorWithCollateralFromTheQCNLService() async throws {
        let coordinator = try CoordinatorProcess()
        try await coordinator.start()
        var (program, environment) = try await Self.prepare(coordinator)
        let platform = try SimulatedPlatform.load(from: coordinator.simulationDirectory)
        let gramine = try FakeGramine(
            directory: coordinator.directory.appendingPathComponent("attestation"), platform: platform,
            enclave: try SimulatedEnclave.measuring(executable: program, signer: platform.defaultSigner),
            signerKey: [UInt8](repeating: 1, count: 16), enclaveKey: [UInt8](repeating: 2, count: 16))
        defer { gramine.stop() }
        let pccs = try LocalPCCS(folder: coordinator.simulationDirectory.appendingPathComponent("collateral"))
        let client = try pccs.client()
        defer { _ = client.shutdown() }
        let uniqueID = Hex.encode(try SimulatedEnclave.uniqueID(of: CoordinatorProcess.binary))
        environment["EDG_MARBLE_COORDINATOR_ROOT_CA"] = nil
        environment["EDG_MARBLE_COORDINATOR_ERA_CONFIG"] = try CoordinatorBinaryTests.write(
            #"{"coordinator": {"UniqueID": "\#(uniqueID)", "Debug": false}}"#, "era.json", in: coordinator.directory)
        environment["EDG_MARBLE_COORDINATOR_CLIENT_ADDR"] = "localhost:\(coordinator.clientPort)"
        environment["EDG_MARBLE_GRAMINE_DIR"] = gramine.directory.path
        environment["QCNL_CONF_PATH"] = try CoordinatorBinaryTests.write(
            #"{"pccs_url": "\#(pccs.baseURL)/sgx/certification/v4/", "use_secure_cert": false}"#, "qcnl.conf",
            in: coordinator.directory)
        environment["EDG_MARBLE_SGX_ROOT_CA"] = try CoordinatorBinaryTests.write(
            try platform.rootCertificate.serializeAsPEM().pemString, "sgx-root.pem", in: coordinator.directory)
        let run = try await Self.launch(["run", "--", program.path], environment: environment)
        #expect(run.status == 0 && run.stdout.contains("hello, marble"), "\(run.stderr)")
        #expect(run.stderr.contains("the Coordinator's collateral from \(pccs.baseURL)"), "\(run.stderr)")
        #expect(try await pccs.stats(client)["/sgx/certification/v4/tcb"] ?? 0 >= 1, "fetched from the PCCS")
        #expect(gramine.quotesServed >= 1)
        #expect(await coordinator.stop() == 0)
    }

    /// In a TDX guest (configfs-tsm played by ``FakeTSM``) the launcher finds the interface,
    /// writes its report data to `inblob` and sends the quote from `outblob`; this Coordinator (a
    /// simulated SGX one) refuses the real TDX quote, and the program never runs.
    @Test func aTDXGuestsConfigfsTSMIsDetectedAndItsQuoteSent() async throws {
        let coordinator = try CoordinatorProcess()
        try await coordinator.start()
        var (program, environment) = try await Self.prepare(coordinator)
        let quote = try TestData.bytes("dcap/dcap-qvl/tdx_quote")
        let tsm = try FakeTSM(directory: coordinator.directory.appendingPathComponent("tsm")) { _ in quote }
        defer { tsm.stop() }
        environment["EDG_MARBLE_TSM_DIR"] = tsm.directory.path
        environment["EDG_MARBLE_GRAMINE_DIR"] = coordinator.directory.appendingPathComponent("no-gramine").path
        let run = try await Self.launch(["run", "--timeout", "5", "--", program.path], environment: environment)
        #expect(run.status != 0 && !run.stdout.contains("hello"), "\(run.stdout)")
        #expect(run.stderr.contains("quotes from the TDX guest's configfs-tsm \(tsm.directory.path)"), "\(run.stderr)")
        #expect(run.stderr.contains("refused"), "\(run.stderr)")
        #expect(tsm.reportData.first?.count == 64, "report data padded to 64 bytes")

        var absent = environment
        absent["EDG_MARBLE_TSM_DIR"] = coordinator.directory.appendingPathComponent("nothing").path
        let none = try await Self.launch(["run", "--attestation", "tdx", "--", program.path], environment: absent)
        #expect(none.status != 0 && none.stderr.contains("not a TDX guest"), "\(none.stderr)")
        #expect(await coordinator.stop() == 0)
    }

    /// A TDX marble end to end in simulation: its quotes come from configfs-tsm (``FakeTSM``
    /// answering with the simulated platform's TDX v4 quote for exactly the report data written),
    /// the Coordinator verifies them against TDX collateral fetched from the local PCCS's `/tdx/`
    /// routes and against the TDX package's measurements, and the program runs. A TD whose RTMR2
    /// differs is refused with the reason, and its program never runs.
    @Test func aTDXMarbleActivatesThroughConfigfsTSMAgainstATDXPackage() async throws {
        let coordinator = try CoordinatorProcess()
        let platform = try SimulatedPlatform.generate()
        try platform.write(to: coordinator.simulationDirectory)
        let pccs = try LocalPCCS(folder: coordinator.simulationDirectory.appendingPathComponent("collateral"))
        let client = try pccs.client()
        defer { _ = client.shutdown() }
        let qcnl = try CoordinatorBinaryTests.write(
            #"{"pccs_url": "\#(pccs.baseURL)/sgx/certification/v4/", "use_secure_cert": false}"#, "qcnl.conf",
            in: coordinator.directory)
        try await coordinator.start(extraArguments: ["--qcnl-config", qcnl])

        let td = SimulatedTD.named("tdx-marble")
        func hex(_ bytes: [UInt8]) -> String { Hex.encode(bytes) }
        let manifest = """
            {"Packages": {"td": {"MRTD": "\(hex(td.mrTD))", "RTMR0": "\(hex(td.rtmrs[0]))",
               "RTMR1": "\(hex(td.rtmrs[1]))", "RTMR2": "\(hex(td.rtmrs[2]))", "MRSEAM": "\(hex(td.mrSeam))",
               "XFAM": "\(hex(td.xfam))"}},
             "Marbles": {"app": {"Package": "td", "Parameters": {"Env": {"GREETING": "TD"}}}}}
            """
        let set = try await coordinator.request(
            "POST", "/api/v2/manifest", body: #"{"manifest":"\#(Data(manifest.utf8).base64EncodedString())"}"#)
        try #require(set.status == 200, "\(set.json)")
        let directory = coordinator.directory
        let program = directory.appendingPathComponent("hello.sh")
        try Data("#!/bin/sh\necho \"hello, $GREETING\"\n".utf8).write(to: program)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: program.path)
        var environment = ProcessInfo.processInfo.environment
        environment["EDG_MARBLE_TYPE"] = "app"
        environment["EDG_MARBLE_COORDINATOR_ADDR"] = "localhost:\(coordinator.meshPort)"
        environment["EDG_MARBLE_UUID_FILE"] = directory.appendingPathComponent("uuid").path
        environment["EDG_MARBLE_COORDINATOR_ROOT_CA"] = try CoordinatorBinaryTests.write(
            try await RecoveryAPITests.root(coordinator).serializeAsPEM().pemString, "root.pem", in: directory)

        let tsm = try FakeTSM(directory: directory.appendingPathComponent("tsm")) { reportData in
            (try? platform.tdxQuote(reportData: reportData, td: td)) ?? []
        }
        defer { tsm.stop() }
        environment["EDG_MARBLE_TSM_DIR"] = tsm.directory.path
        let run = try await Self.launch(
            ["run", "--attestation", "tdx", "--timeout", "20", "--", program.path], environment: environment)
        #expect(run.status == 0 && run.stdout.contains("hello, TD"), "\(run.stderr)")
        #expect(run.stderr.contains("marble: activated as"), "\(run.stderr)")
        #expect(tsm.reportData.count == 1 && tsm.reportData.first?.count == 64)
        #expect(try await pccs.stats(client)["/tdx/certification/v4/tcb"] ?? 0 >= 1, "TDX TCB Info from the PCCS")
        #expect(try await pccs.stats(client)["/tdx/certification/v4/qe/identity"] ?? 0 >= 1)

        // Another RTMR2 (say, another kernel command line): refused with the reason, the program never runs.
        var changed = td
        changed.rtmrs[2][0] ^= 0xFF
        let other = changed
        let otherTSM = try FakeTSM(directory: directory.appendingPathComponent("other-tsm")) { reportData in
            (try? platform.tdxQuote(reportData: reportData, td: other)) ?? []
        }
        defer { otherTSM.stop() }
        environment["EDG_MARBLE_TSM_DIR"] = otherTSM.directory.path
        environment["EDG_MARBLE_UUID_FILE"] = directory.appendingPathComponent("other-uuid").path
        let refused = try await Self.launch(
            ["run", "--attestation", "tdx", "--timeout", "20", "--", program.path], environment: environment)
        #expect(refused.status != 0 && !refused.stdout.contains("hello"), "\(refused.stdout)")
        #expect(refused.stderr.contains("RTMR2"), "\(refused.stderr)")
        #expect(await coordinator.stop() == 0)
    }
}
