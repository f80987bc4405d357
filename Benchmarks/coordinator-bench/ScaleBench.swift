import AsyncHTTPClient
import Attestation
import CoordinatorTesting
import Foundation
import MeshAPI
import NIOCore
import NIOSSL
import Synchronization

/// How the Coordinator's cost grows with its state (issue 15, item 6): the release binary with a
/// manifest of 1,000 marble types and 1,000 secrets, grown to each size of activated marbles
/// (one UUID record each), then measured at that size: RSS, activation rate and p99, manifest and
/// update-log latency, a package update, a full update, and a restart (unseal + load). `soak`
/// runs activations at a fixed rate for minutes and samples RSS every 10 s.
enum ScaleBench {
    static let concurrency = 64

    /// A line on standard output at once (print's buffer holds a file's lines until exit).
    static func emit(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
    static let marbleTypes = 1_000
    static let secrets = 1_000

    /// The scale manifest: marble type `mNNNN` reads secret `sNNNN` (symmetric keys; every tenth a
    /// P-256 certificate), an admin may update the package and the manifest alone.
    static func manifest(signerID: [UInt8], admin: TestUser, securityVersion: Int, generation: Int) -> [UInt8] {
        let pem = admin.certificatePEM.replacingOccurrences(of: "\n", with: "\\n")
        var marbles: [String] = []
        for index in 0..<marbleTypes {
            let secret = String(format: "s%04d", index % secrets)
            let value = index % 10 == 0 ? "{{ pem .Secrets.\(secret).Cert }}" : "{{ hex .Secrets.\(secret) }}"
            marbles.append(
                #""\#(String(format: "m%04d", index))": {"Package": "backend", "Parameters": {"Env": {"SECRET": "\#(value)", "GENERATION": "\#(generation)"}}}"#
            )
        }
        var secretEntries: [String] = []
        for index in 0..<secrets {
            let name = String(format: "s%04d", index)
            secretEntries.append(
                index % 10 == 0
                    ? #""\#(name)": {"Type": "cert-ecdsa", "Size": 256, "Cert": {"Subject": {"CommonName": "\#(name)"}}}"#
                    : #""\#(name)": {"Type": "symmetric-key", "Size": 128}"#)
        }
        return Array(
            """
            {
              "Packages": {"backend": {"SignerID": "\(Hex.encode(signerID))", "ProductID": 1, "SecurityVersion": \(securityVersion)}},
              "Marbles": {\(marbles.joined(separator: ",\n"))},
              "Secrets": {\(secretEntries.joined(separator: ",\n"))},
              "Users": {"admin": {"Certificate": "\(pem)", "Roles": ["packageUpdater", "manifestUpdater"]}},
              "Roles": {
                "packageUpdater": {"ResourceType": "Packages", "ResourceNames": ["backend"], "Actions": ["UpdateSecurityVersion"]},
                "manifestUpdater": {"ResourceType": "Manifest", "Actions": ["UpdateManifest"]}
              },
              "Config": {"UpdateThreshold": 1}
            }
            """.utf8)
    }

    /// The `coordinator` binary as a child process.
    final class Server: @unchecked Sendable {
        let binary: URL
        let arguments: [String]
        let log: URL
        let clientPort: Int
        var process: Process?
        var exited: AsyncStream<Int32>?

        init(binary: URL, arguments: [String], log: URL, clientPort: Int) {
            (self.binary, self.arguments, self.log, self.clientPort) = (binary, arguments, log, clientPort)
        }

        /// Starts the binary and returns the time until the client API answers `/api/v2/status`.
        func start(client: HTTPClient) async throws -> Duration {
            let process = Process()
            process.executableURL = binary
            process.arguments = arguments
            if !FileManager.default.fileExists(atPath: log.path) {
                _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            }
            let handle = try FileHandle(forWritingTo: log)
            try handle.seekToEnd()
            process.standardOutput = handle
            process.standardError = handle
            let (stream, continuation) = AsyncStream<Int32>.makeStream()
            process.terminationHandler = { continuation.yield($0.terminationStatus) }
            let start = ContinuousClock.now
            try process.run()
            (self.process, exited) = (process, stream)
            while ContinuousClock.now < start + .seconds(600) {
                if let answer = try? await ScaleBench.get(client, port: clientPort, "/api/v2/status"),
                    answer.status == 200,
                    answer.body.contains(#""code":3"#)
                {
                    return ContinuousClock.now - start
                }
                guard process.isRunning else { break }
                try await Task.sleep(for: .milliseconds(2))
            }
            throw BenchError("the coordinator did not start serving; see \(log.path)")
        }

        func stop() async {
            process?.terminate()
            if let exited { for await _ in exited { break } }
            process = nil
        }

        var pid: Int32 { process?.processIdentifier ?? 0 }

        /// User + system CPU time of the process so far, in seconds.
        var cpuSeconds: Double {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return .nan }
            // Fields after the command name: state is field 3, utime 14 and stime 15.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return .nan }
            return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
        }

        /// VmRSS in MiB.
        var residentMiB: Double {
            guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
                let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
                let kibibytes = Double(line.split(separator: " ").dropFirst().first ?? "")
            else { return .nan }
            return kibibytes / 1024
        }
    }

    struct Answer {
        var status: UInt
        var body: String
    }

    static func get(_ client: HTTPClient, port: Int, _ path: String) async throws -> Answer {
        let response = try await client.execute(
            HTTPClientRequest(url: "https://127.0.0.1:\(port)\(path)"), timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 256 << 20)
        return Answer(status: response.status.code, body: String(buffer: body))
    }

    static func post(_ client: HTTPClient, port: Int, _ path: String, _ body: String) async throws -> Answer {
        var request = HTTPClientRequest(url: "https://127.0.0.1:\(port)\(path)")
        request.method = .POST
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await client.execute(request, timeout: .seconds(300))
        let collected = try await response.body.collect(upTo: 16 << 20)
        return Answer(status: response.status.code, body: String(buffer: collected))
    }

    /// The median of `count` timed calls, in ms.
    static func median(_ count: Int, _ call: () async throws -> Void) async throws -> Double {
        var times: [Double] = []
        for _ in 0..<count {
            let start = ContinuousClock.now
            try await call()
            times.append(milliseconds(ContinuousClock.now - start))
        }
        return times.sorted()[count / 2]
    }

    /// Prepared marbles and their lean-client TLS contexts; activation `index` uses marble
    /// `index % count` and marble type `index % marbleTypes`.
    struct Fleet {
        var marbles: [(marble: TestMarble, quote: [UInt8], context: NIOSSLContext)] = []

        init(count: Int, platform: SimulatedPlatform, enclave: SimulatedEnclave) throws {
            for _ in 0..<count {
                let marble = try TestMarble()
                marbles.append(
                    (
                        marble, try marble.quote(platform, enclave: enclave),
                        try LeanActivationClient.makeContext(
                            certificate: marble.certificate, key: Array(marble.key.derRepresentation))
                    ))
            }
        }

        func activate(_ index: Int, uuid: String, port: Int) async throws {
            let (marble, quote, context) = marbles[index % marbles.count]
            var request = Rpc_ActivationReq()
            request.quote = Data(quote)
            request.csr = Data(marble.csr)
            request.marbleType = String(format: "m%04d", index % ScaleBench.marbleTypes)
            request.uuid = uuid
            let response = try await LeanActivationClient.activate(request, port: port, context: context)
            guard !response.parameters.env.isEmpty else { throw BenchError("an activation returned no parameters") }
        }
    }

    /// Activations `range` with `concurrency` workers; returns the sorted latencies.
    static func activate(
        _ range: Range<Int>, fleet: Fleet, port: Int, uuid: @escaping @Sendable (Int) -> String
    ) async throws -> [Duration] {
        let next = Counter(range.lowerBound)
        return try await withThrowingTaskGroup(of: [Duration].self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var latencies: [Duration] = []
                    while true {
                        let index = next.value.withLock { value -> Int? in
                            guard value < range.upperBound else { return nil }
                            defer { value += 1 }
                            return value
                        }
                        guard let index else { return latencies }
                        let start = ContinuousClock.now
                        try await fleet.activate(index, uuid: uuid(index), port: port)
                        latencies.append(ContinuousClock.now - start)
                    }
                }
            }
            var all: [Duration] = []
            for try await latencies in group { all += latencies }
            return all.sorted()
        }
    }

    /// Activations for `seconds` with `concurrency` workers (new UUIDs from `first` on); returns
    /// the number done and the sorted latencies.
    static func activate(
        for seconds: Double, from first: Int, fleet: Fleet, port: Int, uuid: @escaping @Sendable (Int) -> String
    ) async throws -> (count: Int, latencies: [Duration]) {
        let end = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        let next = Counter(first)
        let latencies = try await withThrowingTaskGroup(of: [Duration].self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var latencies: [Duration] = []
                    while ContinuousClock.now < end {
                        let index = next.value.withLock { value in
                            defer { value += 1 }
                            return value
                        }
                        let start = ContinuousClock.now
                        try await fleet.activate(index, uuid: uuid(index), port: port)
                        latencies.append(ContinuousClock.now - start)
                    }
                    return latencies
                }
            }
            var all: [Duration] = []
            for try await latencies in group { all += latencies }
            return all.sorted()
        }
        return (latencies.count, latencies)
    }

    /// The next activation's index, shared by the workers.
    final class Counter: Sendable {
        let value: Mutex<Int>
        init(_ first: Int) { value = Mutex(first) }
    }

    static func uuid(_ index: Int) -> String {
        // A fixed prefix and the index: distinct, valid, and the same for the same index.
        String(format: "5ca1ab1e-0000-4000-8000-%012x", index)
    }

    struct Setup {
        var work: URL
        var platform: SimulatedPlatform
        var enclave: SimulatedEnclave
        var admin: TestUser
        var server: Server
        var client: HTTPClient
        var clientPort: Int
        var meshPort: Int
    }

    static func setUp(products: URL, name: String) async throws -> Setup {
        let binary = products.appendingPathComponent("coordinator")
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw BenchError("build the Coordinator first: swift build -c release --product coordinator")
        }
        let work = FileManager.default.temporaryDirectory.appendingPathComponent(
            "coordinator-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let platform = try SimulatedPlatform.generate()
        try platform.write(to: work.appendingPathComponent("simulation"))
        let enclave = ActivationManifest.enclave(on: platform)
        let admin = try TestUser(name: "admin")
        let manifest = work.appendingPathComponent("manifest.json")
        try Data(Self.manifest(signerID: enclave.signerID, admin: admin, securityVersion: 1, generation: 0)).write(
            to: manifest)
        let certificate = work.appendingPathComponent("admin.crt")
        let key = work.appendingPathComponent("admin.key")
        try admin.certificatePEM.write(to: certificate, atomically: true, encoding: .utf8)
        try admin.keyPEM.write(to: key, atomically: true, encoding: .utf8)
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .none
        tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate.path).map { .certificate($0) }
        tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key.path, format: .pem))
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 4
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        // Below Linux's ephemeral range, which the load's own connections use up.
        let clientPort = Int.random(in: 10_000..<15_000)
        let meshPort = clientPort + 5_000
        let server = Server(
            binary: binary,
            arguments: [
                "--simulation", work.appendingPathComponent("simulation").path, "--seal-dir",
                work.appendingPathComponent("seal").path, "--client-addr", "127.0.0.1:\(clientPort)", "--mesh-addr",
                "127.0.0.1:\(meshPort)", "--prometheus-addr", "127.0.0.1:\(meshPort + 5_000)", "--startup-manifest",
                manifest.path, "--log-level", "error",
            ], log: work.appendingPathComponent("coordinator.log"), clientPort: clientPort)
        return Setup(
            work: work, platform: platform, enclave: enclave, admin: admin, server: server, client: client,
            clientPort: clientPort, meshPort: meshPort)
    }

    /// `coordinator-bench scale [SIZES] [SECONDS]`: SIZES comma-separated (default 1000,10000,100000).
    static func run(products: URL, sizes: [Int], seconds: Double) async throws {
        // UUID i is activated as type i % marbleTypes; re-activations keep that only at such sizes.
        guard !sizes.isEmpty, sizes.allSatisfy({ $0 > 0 && $0 % marbleTypes == 0 }), sizes == sizes.sorted() else {
            throw BenchError("sizes must be rising multiples of \(marbleTypes), e.g. 1000,10000,100000")
        }
        let setup = try await setUp(products: products, name: "scale")
        defer { try? FileManager.default.removeItem(at: setup.work) }
        let (server, client, clientPort, meshPort) = (setup.server, setup.client, setup.clientPort, setup.meshPort)
        let fresh = try await server.start(client: client)
        emit(
            String(
                format: "scale: fresh start with the %d-type, %d-secret manifest: %.0f ms, RSS %.0f MiB", marbleTypes,
                secrets, milliseconds(fresh), server.residentMiB))
        let fleet = try Fleet(count: 256, platform: setup.platform, enclave: setup.enclave)
        emit(
            "| activated marbles | RSS | restart (unseal + load) | RSS after restart | activations/s | Coordinator CPU / activation | p50 | p99 | GET manifest | GET update log | package update | full update |"
        )
        emit("|---|---|---|---|---|---|---|---|---|---|---|---|")
        var activated = 0
        var generation = 0
        var securityVersion = 1
        for size in sizes {
            let growStart = ContinuousClock.now
            _ = try await activate(activated..<size, fleet: fleet, port: meshPort, uuid: uuid)
            let grown = size - activated
            activated = size
            FileHandle.standardError.write(
                Data(
                    String(
                        format: "scale: grew by %d activations in %.1f s\n", grown,
                        milliseconds(ContinuousClock.now - growStart) / 1000
                    ).utf8))
            // The rate at this size: re-activations of existing UUIDs, so the size stays; the
            // median of three rounds, and the Coordinator's CPU time per activation over all three
            // (steadier than the rate when other work shares the machine), after a round that
            // is not counted (the first size's rounds came right after start-up, and lost by it).
            _ = try await activate(for: seconds, from: 0, fleet: fleet, port: meshPort) { uuid($0 % size) }
            var rounds: [(count: Int, latencies: [Duration])] = []
            let cpuBefore = server.cpuSeconds
            for _ in 0..<3 {
                rounds.append(
                    try await activate(for: seconds, from: 0, fleet: fleet, port: meshPort) {
                        uuid($0 % size)
                    })
            }
            let cpuPerActivation = (server.cpuSeconds - cpuBefore) * 1000 / Double(rounds.map(\.count).reduce(0, +))
            let measured = rounds.sorted { $0.count < $1.count }[1]
            let rate = Double(measured.count) / seconds
            let (p50, p99) = (percentile(measured.latencies, 50), percentile(measured.latencies, 99))
            let rss = server.residentMiB
            let manifestLatency = try await median(21) {
                let answer = try await get(client, port: clientPort, "/api/v2/manifest")
                guard answer.status == 200 else { throw BenchError("GET /api/v2/manifest: \(answer.status)") }
            }
            let logLatency = try await median(21) {
                let answer = try await get(client, port: clientPort, "/api/v2/update")
                guard answer.status == 200 else { throw BenchError("GET /api/v2/update: \(answer.status)") }
            }
            // A package update raises the SVN floor to the marbles' own 2 (they stay valid); a
            // later size's update is a no-op at 2, so it alternates with a full update's reset.
            securityVersion = securityVersion == 1 ? 2 : 1
            let packageStart = ContinuousClock.now
            let packageManifest = #"{"Packages":{"backend":{"SecurityVersion":2}}}"#
            if securityVersion == 2 {
                let answer = try await post(
                    client, port: clientPort, "/api/v2/update",
                    #"{"manifest":"\#(Data(packageManifest.utf8).base64EncodedString())"}"#)
                guard answer.status == 200 else { throw BenchError("package update: \(answer.status) \(answer.body)") }
            }
            let packageTime = securityVersion == 2 ? milliseconds(ContinuousClock.now - packageStart) : .nan
            generation += 1
            let full = Self.manifest(
                signerID: setup.enclave.signerID, admin: setup.admin, securityVersion: 2, generation: generation)
            let fullStart = ContinuousClock.now
            let answer = try await post(
                client, port: clientPort, "/api/v2/update", #"{"manifest":"\#(Data(full).base64EncodedString())"}"#)
            guard answer.status == 200 else {
                throw BenchError("full update: \(answer.status) \(answer.body.prefix(300))")
            }
            let fullTime = milliseconds(ContinuousClock.now - fullStart)
            await server.stop()
            let restart = try await server.start(client: client)
            let rssAfter = server.residentMiB
            emit(
                String(
                    format:
                        "| %d | %.0f MiB | %.0f ms | %.0f MiB | %.0f /s | %.2f ms | %.1f ms | %.1f ms | %.1f ms | %.1f ms | %@ | %.0f ms |",
                    size, rss, milliseconds(restart), rssAfter, rate, cpuPerActivation, p50, p99, manifestLatency,
                    logLatency,
                    packageTime.isNaN ? "—" : String(format: "%.0f ms", packageTime), fullTime))
        }
        await server.stop()
        try await client.shutdown()
    }

    /// `coordinator-bench soak [MINUTES] [RATE]`: RATE activations/s (default 500) of a fleet of
    /// 10,000 UUIDs for MINUTES (default 10); RSS every 10 s.
    static func soak(products: URL, minutes: Double, rate: Double) async throws {
        let setup = try await setUp(products: products, name: "soak")
        defer { try? FileManager.default.removeItem(at: setup.work) }
        let (server, client, meshPort) = (setup.server, setup.client, setup.meshPort)
        _ = try await server.start(client: client)
        let fleet = try Fleet(count: 256, platform: setup.platform, enclave: setup.enclave)
        let fleetSize = 10_000
        emit("| time | RSS | activations in the last 10 s | p99 |")
        emit("|---|---|---|---|")
        emit(String(format: "| 0 s | %.1f MiB | — | — |", server.residentMiB))
        let start = ContinuousClock.now
        let interval = Duration.milliseconds(Int(1000 / rate * Double(concurrency)))
        var index = 0
        for window in 1...Int(minutes * 6) {
            let windowEnd = start + .seconds(10 * window)
            let first = index
            // Each worker keeps its own pace: concurrency workers × 1/interval = rate.
            let latencies = try await withThrowingTaskGroup(of: [Duration].self) { group in
                for worker in 0..<concurrency {
                    group.addTask {
                        var latencies: [Duration] = []
                        var next = ContinuousClock.now + interval * Double(worker) / Double(concurrency)
                        var count = 0
                        while next < windowEnd {
                            try await Task.sleep(until: next)
                            let call = first + worker + count * concurrency
                            let began = ContinuousClock.now
                            try await fleet.activate(call, uuid: uuid(call % fleetSize), port: meshPort)
                            latencies.append(ContinuousClock.now - began)
                            count += 1
                            next += interval
                        }
                        return latencies
                    }
                }
                var all: [Duration] = []
                for try await latencies in group { all += latencies }
                return all.sorted()
            }
            index += latencies.count
            let p99 = percentile(latencies, 99)
            emit(
                String(
                    format: "| %d s | %.1f MiB | %d | %.1f ms |", window * 10, server.residentMiB, latencies.count, p99)
            )
        }
        await server.stop()
        try await client.shutdown()
    }
}
