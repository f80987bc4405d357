import Attestation
import CoordinatorCore
import CoordinatorTesting
import Crypto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import MeshAPI
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import Store
import X509

// Coordinator benchmarks: `swift build -c release --product coordinator && swift run -c release coordinator-bench [seconds]`.
// `coordinator-bench scale [SIZES] [SECONDS]` and `coordinator-bench soak [MINUTES] [RATE]`: ScaleBench.
// Runs the release `coordinator` binary (simulation, SQLite store) as its own process and measures
// start → serving, marble activations with 64 concurrent clients (a new mutual-TLS connection and
// a full quote verification per activation), and, in the same run, the bare NIO mutual-TLS
// handshake rate against a server process with the same certificate and key type.

let arguments = CommandLine.arguments.dropFirst()
let products = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()

if arguments.first == "stores" {
    try await StoreBench.run(seconds: arguments.dropFirst().first.flatMap(Double.init) ?? 10)
    exit(0)
}
if arguments.first == "scale" {
    let sizes =
        arguments.dropFirst().first.map { $0.split(separator: ",").compactMap { Int($0) } } ?? [1_000, 10_000, 100_000]
    try await ScaleBench.run(
        products: products, sizes: sizes, seconds: arguments.dropFirst(2).first.flatMap(Double.init) ?? 10)
    exit(0)
}
if arguments.first == "soak" {
    try await ScaleBench.soak(
        products: products, minutes: arguments.dropFirst().first.flatMap(Double.init) ?? 10,
        rate: arguments.dropFirst(2).first.flatMap(Double.init) ?? 500)
    exit(0)
}
if arguments.first == "handshake-server" {
    try await HandshakeServer.run(port: Int(arguments.dropFirst().first ?? "") ?? 0)
    exit(0)
}
if arguments.first == "grpc-server", arguments.count == 3 {
    let response = try Rpc_ActivationResp(
        serializedBytes: Array(try Data(contentsOf: URL(fileURLWithPath: arguments.last!))))
    try await HandshakeServer.runGRPC(port: Int(arguments.dropFirst().first!) ?? 0, response: response)
    exit(0)
}

let seconds = arguments.first.flatMap(Double.init) ?? 10
let concurrency = 64
let binary = products.appendingPathComponent("coordinator")
guard FileManager.default.isExecutableFile(atPath: binary.path) else {
    print("coordinator-bench: build the Coordinator first: swift build -c release --product coordinator")
    exit(1)
}

let work = FileManager.default.temporaryDirectory.appendingPathComponent("coordinator-bench-\(UUID().uuidString)")
defer { try? FileManager.default.removeItem(at: work) }
let platform = try SimulatedPlatform.generate()
try platform.write(to: work.appendingPathComponent("simulation"))
let enclave = ActivationManifest.enclave(on: platform)
let manifestFile = work.appendingPathComponent("manifest.json")
try Data(ActivationManifest.bytes(signerID: enclave.signerID, maxActivations: 0)).write(to: manifestFile)

// Marbles are prepared before timing: key, certificate, CSR and a quote binding the certificate.
var marbles: [(marble: TestMarble, quote: [UInt8])] = []
for _ in 0..<256 {
    let marble = try TestMarble()
    marbles.append((marble, try marble.quote(platform, enclave: enclave)))
}
let prepared = marbles

// Below Linux's ephemeral range (32768–60999), which the load's own connections use up.
let clientPort = Int.random(in: 10_000..<15_000)
let meshPort = Int.random(in: 15_000..<20_000)
let handshakePort = Int.random(in: 20_000..<25_000)
let grpcBaselinePort = Int.random(in: 25_000..<30_000)

/// A child process and the stream that reports its exit.
struct Child {
    let process: Process
    let exited: AsyncStream<Int32>
    let log: URL

    init(_ executable: URL, _ arguments: [String]) throws {
        process = Process()
        process.executableURL = executable
        process.arguments = arguments
        // Output goes to a log in the work directory, shown if the child fails.
        let log = work.appendingPathComponent("\(executable.lastPathComponent)-\(arguments.first ?? "")-\(UUID()).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        self.log = log
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        let (stream, continuation) = AsyncStream<Int32>.makeStream()
        exited = stream
        process.terminationHandler = { continuation.yield($0.terminationStatus) }
        try process.run()
    }

    func stop() async {
        process.terminate()
        for await _ in exited { break }
    }
}

/// Polls a TCP port until it accepts, and returns the time it took from `start`.
func waitForPort(_ port: Int, since start: ContinuousClock.Instant) async throws -> Duration {
    let deadline = start + .seconds(30)
    while ContinuousClock.now < deadline {
        if let channel = try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port).get()
        {
            try? await channel.close()
            return ContinuousClock.now - start
        }
        try await Task.sleep(for: .milliseconds(1))
    }
    throw BenchError("nothing listens on port \(port) after 30 s")
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
}

/// The latency at `percent` of `sorted` latencies, in ms (nan when there are none).
func percentile(_ sorted: [Duration], _ percent: Int) -> Double {
    guard !sorted.isEmpty else { return .nan }
    return milliseconds(sorted[min(sorted.count - 1, sorted.count * percent / 100)])
}

func coordinatorArguments() -> [String] {
    [
        "--simulation", work.appendingPathComponent("simulation").path, "--seal-dir",
        work.appendingPathComponent("seal").path, "--client-addr", "127.0.0.1:\(clientPort)", "--mesh-addr",
        "127.0.0.1:\(meshPort)", "--startup-manifest", manifestFile.path, "--log-level", "error",
    ]
}

/// Runs `body` on `concurrency` tasks for `seconds`; returns completions and per-call latencies.
func load(_ body: @escaping @Sendable (Int) async throws -> Void) async throws -> (count: Int, latencies: [Duration]) {
    let end = ContinuousClock.now + .seconds(seconds)
    return try await withThrowingTaskGroup(of: [Duration].self) { group in
        for worker in 0..<concurrency {
            group.addTask {
                var latencies: [Duration] = []
                var index = worker
                while ContinuousClock.now < end {
                    let start = ContinuousClock.now
                    try await body(index)
                    latencies.append(ContinuousClock.now - start)
                    index += concurrency
                }
                return latencies
            }
        }
        var all: [Duration] = []
        for try await latencies in group { all += latencies }
        return (all.count, all.sorted())
    }
}

func report(_ name: String, _ result: (count: Int, latencies: [Duration])) -> Double {
    let rate = Double(result.count) / seconds
    let (p50, p99) = (percentile(result.latencies, 50), percentile(result.latencies, 99))
    print(String(format: "| %@ | %.0f /s | %.1f ms | %.1f ms | %d |", name, rate, p50, p99, result.count))
    return rate
}

// The Coordinator's own work in-process, without TLS or gRPC: the same core and SQLite store,
// 64 concurrent activations, each bound to its marble's certificate.
let inProcess: Coordinator = try await {
    let platformDirectory = work.appendingPathComponent("in-process")
    try FileManager.default.createDirectory(at: platformDirectory, withIntermediateDirectories: true)
    let coordinator = try await Coordinator.start(
        verifier: platform.verifier, collateralProvider: StaticCollateralProvider(platform.collateral),
        store: try await SQLiteStore.open(path: platformDirectory.appendingPathComponent("state.db").path),
        sealer: EphemeralSealer())
    _ = try await coordinator.setManifest(ActivationManifest.bytes(signerID: enclave.signerID, maxActivations: 0))
    return coordinator
}()
func activateInProcess(_ index: Int) async throws {
    let (marble, quote) = prepared[index % prepared.count]
    let parameters = try await inProcess.activate(
        ActivationRequest(quote: quote, csr: marble.csr, marbleType: "backend", uuid: UUID().uuidString),
        peerCertificate: marble.certificate)
    guard !parameters.env.isEmpty else { throw BenchError("an activation returned no parameters") }
}

print("| benchmark (\(concurrency) concurrent clients, \(Int(seconds)) s) | rate | p50 | p99 | completed |")
print("|---|---|---|---|---|")

// Start → serving: a fresh seal directory (new CA, manifest set), then a restart from the sealed state.
var starts: [String] = []
var coordinator: Child?
for label in ["fresh state (new CA, start-up manifest)", "restart (unseal SQLite state)"] {
    let start = ContinuousClock.now
    let process = try Child(binary, coordinatorArguments())
    let meshReady = try await waitForPort(meshPort, since: start)
    let clientReady = try await waitForPort(clientPort, since: start)
    starts.append(String(format: "%@: %.0f ms", label, milliseconds(max(meshReady, clientReady))))
    if label.hasPrefix("fresh") {
        await process.stop()
    } else {
        coordinator = process
    }
}

/// The activation request of marble `index`, with a fresh UUID.
func request(_ index: Int) -> (request: Rpc_ActivationReq, marble: TestMarble) {
    let (marble, quote) = prepared[index % prepared.count]
    var request = Rpc_ActivationReq()
    request.quote = Data(quote)
    request.csr = Data(marble.csr)
    request.marbleType = "backend"
    request.uuid = UUID().uuidString
    return (request, marble)
}

/// One marble activation with grpc-swift, as a marble's premain makes it: a new client transport
/// (mutual TLS), `Activate`, close.
func activateWithGRPCSwift(_ index: Int) async throws {
    let (request, marble) = request(index)
    let transport = try HTTP2ClientTransport.Posix(
        target: .ipv4(address: "127.0.0.1", port: meshPort),
        transportSecurity: .mTLS(
            certificateChain: [.bytes(marble.certificate, format: .der)],
            privateKey: .bytes(Array(marble.key.derRepresentation), format: .der)
        ) { $0.serverCertificateVerification = .noVerification })
    let response = try await withGRPCClient(transport: transport) { client in
        try await Rpc_Marble.Client(wrapping: client).activate(request)
    }
    guard !response.parameters.env.isEmpty else { throw BenchError("an activation returned no parameters") }
}

/// The same activation from the lean client, with each marble's TLS context made once.
let leanContexts = try prepared.map {
    try LeanActivationClient.makeContext(
        certificate: $0.marble.certificate, key: Array($0.marble.key.derRepresentation))
}
func activateWithLeanClient(_ index: Int) async throws {
    let response = try await LeanActivationClient.activate(
        request(index).request, port: meshPort, context: leanContexts[index % leanContexts.count])
    guard !response.parameters.env.isEmpty else { throw BenchError("an activation returned no parameters") }
}

/// CPU seconds (user + system) a process has used, from /proc (Linux clock ticks of 1/100 s).
func cpuSeconds(_ pid: Int32) -> Double {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return .nan }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return .nan }
    return (user + system) / 100
}

let ownPID = ProcessInfo.processInfo.processIdentifier

/// A load phase with the CPU used by the server process and by this (client) process.
struct Phase {
    var count: Int
    var latencies: [Duration]
    var serverCPU: Double
    var clientCPU: Double
}

/// Stops `child`, prints the error and the end of the child's log, and exits non-zero.
func fail(_ what: String, _ error: any Error, _ child: Child) async -> Never {
    await child.stop()
    print("coordinator-bench: \(what): \(error)")
    if let log = try? String(contentsOf: child.log, encoding: .utf8), !log.isEmpty {
        print("The end of \(child.log.lastPathComponent):\n\(log.suffix(4000))")
    }
    exit(1)
}

func measure(server: Int32, _ body: @escaping @Sendable (Int) async throws -> Void) async throws -> Phase {
    let serverBefore = cpuSeconds(server)
    let clientBefore = cpuSeconds(ownPID)
    let result = try await load(body)
    // In-process, the server is this process: its CPU is all the server's.
    return Phase(
        count: result.count, latencies: result.latencies, serverCPU: cpuSeconds(server) - serverBefore,
        clientCPU: server == ownPID ? .nan : cpuSeconds(ownPID) - clientBefore)
}

let coordinatorPID = coordinator!.process.processIdentifier
var phases: [(name: String, phase: Phase)] = []
do {
    phases.append(
        ("Coordinator.activate in-process (no TLS, no gRPC)", try await measure(server: ownPID, activateInProcess)))
    phases.append(
        ("marble activation, grpc-swift client", try await measure(server: coordinatorPID, activateWithGRPCSwift)))
    phases.append(
        ("marble activation, lean NIO HTTP/2 client", try await measure(server: coordinatorPID, activateWithLeanClient))
    )
    // One more, recorded for the gRPC-only baseline below.
    let recorded = try await LeanActivationClient.activate(request(0).request, port: meshPort, context: leanContexts[0])
    try Data(try recorded.serializedBytes() as [UInt8]).write(to: work.appendingPathComponent("response.bin"))
} catch {
    await fail("an activation failed", error, coordinator!)
}
await coordinator?.stop()

// The gRPC stack alone: grpc-swift with the Coordinator's transport settings, answering every
// Activate with the recorded Coordinator response (same size) and doing no work.
let grpcBaseline = try Child(
    products.appendingPathComponent("coordinator-bench"),
    ["grpc-server", String(grpcBaselinePort), work.appendingPathComponent("response.bin").path])
_ = try await waitForPort(grpcBaselinePort, since: .now)
func activateCanned(_ index: Int) async throws {
    let response = try await LeanActivationClient.activate(
        request(index).request, port: grpcBaselinePort, context: leanContexts[index % leanContexts.count])
    guard !response.parameters.env.isEmpty else { throw BenchError("the canned response has no parameters") }
}
do {
    phases.append(
        (
            "gRPC stack only (canned Activate response), lean client",
            try await measure(server: grpcBaseline.process.processIdentifier, activateCanned)
        ))
} catch {
    await fail("a call to the gRPC baseline failed", error, grpcBaseline)
}
await grpcBaseline.stop()

// The bare NIO mutual-TLS handshake: same key type, same client verification callback, own process.
let handshakeServer = try Child(
    products.appendingPathComponent("coordinator-bench"), ["handshake-server", String(handshakePort)])
_ = try await waitForPort(handshakePort, since: .now)
let handshakeMarble = prepared[0].marble
var clientTLS = TLSConfiguration.makeClientConfiguration()
clientTLS.certificateVerification = .none
clientTLS.certificateChain = [.certificate(try NIOSSLCertificate(bytes: handshakeMarble.certificate, format: .der))]
clientTLS.privateKey = .privateKey(
    try NIOSSLPrivateKey(bytes: Array(handshakeMarble.key.derRepresentation), format: .der))
let clientContext = try NIOSSLContext(configuration: clientTLS)

final class HandshakeWaiter: ChannelInboundHandler {
    typealias InboundIn = NIOAny
    let promise: EventLoopPromise<Void>
    init(_ promise: EventLoopPromise<Void>) { self.promise = promise }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent { promise.succeed(()) }
        context.fireUserInboundEventTriggered(event)
    }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { promise.fail(error) }
    func channelInactive(context: ChannelHandlerContext) { promise.fail(ChannelError.alreadyClosed) }
}

do {
    phases.append(
        (
            "bare NIO mTLS handshake (connect + handshake + close)",
            try await measure(server: handshakeServer.process.processIdentifier) { _ in
                let loop = MultiThreadedEventLoopGroup.singleton.next()
                let done = loop.makePromise(of: Void.self)
                let channel = try await ClientBootstrap(group: loop).channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: clientContext, serverHostname: nil))
                        try channel.pipeline.syncOperations.addHandler(HandshakeWaiter(done))
                    }
                }.connect(host: "127.0.0.1", port: handshakePort).get()
                try await done.futureResult.get()
                try await channel.close()
            }
        ))
} catch {
    await fail("a bare handshake failed", error, handshakeServer)
}
await handshakeServer.stop()

/// "CPU per operation in ms (cores busy)" for a phase.
func cpu(_ used: Double, per count: Int) -> String {
    used.isNaN ? "—" : String(format: "%.2f ms (%.2f cores)", 1000 * used / Double(count), used / seconds)
}
let rates = phases.map { report($0.name, ($0.phase.count, $0.phase.latencies)) }
print("")
for (name, rate) in zip(phases.map(\.name), rates).dropLast() {
    print(String(format: "%@: %.0f %% of the bare handshake rate.", name, 100 * rate / rates.last!))
}
print("")
print("CPU per operation (cores busy over the run): server | clients")
for (name, phase) in phases {
    print("- \(name): \(cpu(phase.serverCPU, per: phase.count)) | \(cpu(phase.clientCPU, per: phase.count))")
}
print("Start → serving (both ports accept), release binary, SQLite store: " + starts.joined(separator: "; "))
