import ArgumentParser
import Attestation
import Foundation
import MarbleKit

/// `marble run [--simulation DIR] -- PROGRAM ARGS…`: activates with the Coordinator, then
/// becomes PROGRAM with the manifest's files, environment and arguments.
@main
struct MarbleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "marble",
        abstract: "Run any program as a marble: attest it to the Coordinator, then start it with its secrets.",
        subcommands: [Run.self])

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Activate, write the manifest's files, set its environment and argv, and exec PROGRAM.",
            discussion: """
                Reads EDG_MARBLE_TYPE, EDG_MARBLE_COORDINATOR_ADDR (default localhost:2001), \
                EDG_MARBLE_UUID_FILE (default ./uuid), EDG_MARBLE_DNS_NAMES (default localhost) and \
                EDG_MARBLE_COORDINATOR_ROOT_CA (the Coordinator root certificate to trust, PEM file). \
                In simulation (--simulation DIR or EDG_MARBLE_SIMULATION) the quote comes from the \
                simulated platform in DIR and the measured identity is PROGRAM itself: UniqueID = \
                SHA-256 of its file, SignerID = the platform's default signing key. There is no \
                security in simulation.

                Example:
                  EDG_MARBLE_TYPE=backend EDG_MARBLE_COORDINATOR_ROOT_CA=root.pem \\
                    marble run --simulation sim -- ./server --port 8443
                """)

        @Option(help: "Simulated platform directory (EDG_MARBLE_SIMULATION).")
        var simulation: String?

        @Option(help: "Seconds to keep retrying while the Coordinator is unreachable.")
        var timeout: Int = 60

        @Argument(parsing: .captureForPassthrough, help: "The program and its arguments (after --).")
        var program: [String] = []

        func run() async throws {
            if program.first == "--help" || program.first == "-h" { throw CleanExit.helpRequest(self) }
            let command = program.first == "--" ? Array(program.dropFirst()) : program
            guard let name = command.first else { throw ValidationError("give the program to run after --") }
            let environment = ProcessInfo.processInfo.environment
            guard let path = MarbleLauncher.resolve(name, path: environment["PATH"]) else {
                throw ValidationError("\(name) is not an executable file (nor on PATH)")
            }
            let configuration = try MarbleConfiguration.fromEnvironment(environment)
            guard let directory = simulation ?? environment["EDG_MARBLE_SIMULATION"] else {
                throw ValidationError(
                    "no quoting enclave here: run in simulation with --simulation DIR (a platform made by `marblerun simulation init DIR`)"
                )
            }
            let platform = try SimulatedPlatform.load(from: URL(fileURLWithPath: directory))
            let enclave = try SimulatedEnclave.measuring(
                executable: URL(fileURLWithPath: path), signer: platform.defaultSigner)
            FileHandle.standardError.write(
                Data("marble: SIMULATION: \(path) measured as UniqueID \(Hex.encode(enclave.uniqueID))\n".utf8))
            let parameters = try await Marble.activate(
                configuration, quoteIssuer: SimulatedQuoteIssuer(platform: platform, enclave: enclave),
                timeout: .seconds(timeout)
            ) { line in FileHandle.standardError.write(Data("marble: \(line)\n".utf8)) }
            FileHandle.standardError.write(
                Data("marble: activated as \(parameters.uuid.uuidString.lowercased())\n".utf8))
            try MarbleLauncher.writeFiles(parameters)
            try MarbleLauncher.exec(
                path, arguments: MarbleLauncher.arguments(parameters, default: command),
                environment: MarbleLauncher.environment(parameters, base: environment))
        }
    }
}
