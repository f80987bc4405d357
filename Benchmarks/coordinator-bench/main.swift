import Attestation
import Crypto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import ManifestTesting
import MeshAPI
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import X509

// Coordinator benchmarks: `swift build -c release --product coordinator && swift run -c release coordinator-bench [seconds]`.
// Runs the release `coordinator` binary (simulation, SQLite store) as its own process and measures
// start → serving, marble activations with 64 concurrent clients (a new mutual-TLS connection and
// a full quote verification per activation), and, in the same run, the bare NIO mutual-TLS
// handshake rate against a server process with the same certificate and key type.

let arguments = CommandLine.arguments.dropFirst()
let products = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()

if arguments.first == "handshake-server" {
    try await HandshakeServer.run(port: Int(arguments.dropFirst().first ?? "") ?? 0)
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

let clientPort = Int.random(in: 20_000..<40_000)
let meshPort = Int.random(in: 40_000..<50_000)
let handshakePort = Int.random(in: 50_000..<60_000)

/// A child process and the stream that reports its exit.
struct Child {
    let process: Process
    let exited: AsyncStream<Int32>

    init(_ executable: URL, _ arguments: [String]) throws {
        process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
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
    let p50 = milliseconds(result.latencies[result.latencies.count / 2])
    let p99 = milliseconds(result.latencies[min(result.latencies.count - 1, result.latencies.count * 99 / 100)])
    print(String(format: "| %@ | %.0f /s | %.1f ms | %.1f ms | %d |", name, rate, p50, p99, result.count))
    return rate
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

/// One marble activation over a new mutual-TLS connection, as a marble's premain makes it.
func activate(_ index: Int) async throws {
    let (marble, quote) = prepared[index % prepared.count]
    let transport = try HTTP2ClientTransport.Posix(
        target: .ipv4(address: "127.0.0.1", port: meshPort),
        transportSecurity: .mTLS(
            certificateChain: [.bytes(marble.certificate, format: .der)],
            privateKey: .bytes(Array(marble.key.derRepresentation), format: .der)
        ) { $0.serverCertificateVerification = .noVerification })
    var request = Rpc_ActivationReq()
    request.quote = Data(quote)
    request.csr = Data(marble.csr)
    request.marbleType = "backend"
    request.uuid = UUID().uuidString
    let response = try await withGRPCClient(transport: transport) { client in
        try await Rpc_Marble.Client(wrapping: client).activate(request)
    }
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

let cpuBefore = cpuSeconds(coordinator!.process.processIdentifier)
let activations: (count: Int, latencies: [Duration])
do {
    activations = try await load(activate)
} catch {
    await coordinator?.stop()
    print("coordinator-bench: an activation failed: \(error)")
    exit(1)
}
let coordinatorCPU = cpuSeconds(coordinator!.process.processIdentifier) - cpuBefore
let activationRate = report("marble activation (mTLS connect + Activate + close)", activations)
await coordinator?.stop()

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

let handshakeRate = report(
    "bare NIO mTLS handshake (connect + handshake + close)",
    try await load { _ in
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
    })
await handshakeServer.stop()

print("")
print(String(format: "Activations reach %.0f %% of the bare handshake rate.", 100 * activationRate / handshakeRate))
print(
    String(
        format: "Coordinator CPU per activation: %.2f ms (%.2f cores busy; the clients share the same cores).",
        1000 * coordinatorCPU / Double(activations.count), coordinatorCPU / seconds))
print("Start → serving (both ports accept), release binary, SQLite store: " + starts.joined(separator: "; "))
