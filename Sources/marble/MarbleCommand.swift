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

        @Option(help: "Simulated platform directory (EDG_MARBLE_SIMULATION); selects simulation.")
        var simulation: String?

        @Option(
            help: """
                Where quotes come from: auto (Gramine when GRAMINE-DIR/quote exists, else simulation \
                if a platform is given), gramine or simulation (EDG_MARBLE_ATTESTATION).
                """)
        var attestation: AttestationSource?

        @Option(help: "Gramine's attestation interface (EDG_MARBLE_GRAMINE_DIR).")
        var gramineDir: String?

        @Option(help: "Seconds to keep retrying while the Coordinator is unreachable.")
        var timeout: Int = 60

        @Argument(parsing: .captureForPassthrough, help: "The program and its arguments (after --).")
        var program: [String] = []

        enum AttestationSource: String, ExpressibleByArgument, CaseIterable {
            case auto, gramine, simulation
        }

        func run() async throws {
            if program.first == "--help" || program.first == "-h" { throw CleanExit.helpRequest(self) }
            let command = program.first == "--" ? Array(program.dropFirst()) : program
            guard let name = command.first else { throw ValidationError("give the program to run after --") }
            let environment = ProcessInfo.processInfo.environment
            guard let path = MarbleLauncher.resolve(name, path: environment["PATH"]) else {
                throw ValidationError("\(name) is not an executable file (nor on PATH)")
            }
            let configuration = try MarbleConfiguration.fromEnvironment(environment)
            let issuer = try quoteIssuer(for: URL(fileURLWithPath: path), environment: environment)
            MarbleCommand.report(
                "Coordinator \(configuration.coordinatorAddress), marble type \(configuration.marbleType)")
            let parameters = try await Marble.activate(
                configuration, quoteIssuer: issuer, timeout: .seconds(timeout), report: MarbleCommand.report)
            MarbleCommand.report("activated as \(parameters.uuid.uuidString.lowercased())")
            try MarbleLauncher.writeFiles(parameters)
            MarbleCommand.report(
                "wrote \(parameters.files.count) file(s), set \(parameters.env.count) variable(s); starting \(path)")
            try MarbleLauncher.exec(
                path, arguments: MarbleLauncher.arguments(parameters, default: command),
                environment: MarbleLauncher.environment(parameters, base: environment))
        }

        /// Gramine's `/dev/attestation` when present (or forced), else the simulated platform,
        /// where PROGRAM's own file is the measured identity.
        func quoteIssuer(for program: URL, environment: [String: String]) throws -> any QuoteIssuer {
            func setting(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
            let gramine = URL(fileURLWithPath: gramineDir ?? setting("EDG_MARBLE_GRAMINE_DIR") ?? "/dev/attestation")
            let platformDirectory = simulation ?? setting("EDG_MARBLE_SIMULATION")
            var source = attestation ?? .auto
            if attestation == nil, let text = setting("EDG_MARBLE_ATTESTATION") {
                guard let chosen = AttestationSource(rawValue: text) else {
                    throw ValidationError("EDG_MARBLE_ATTESTATION=\(text): use auto, gramine or simulation")
                }
                source = chosen
            }
            if source == .auto {
                if GramineQuoteIssuer.isAvailable(at: gramine) {
                    source = .gramine
                } else if platformDirectory != nil {
                    source = .simulation
                } else {
                    throw ValidationError(
                        "no quoting enclave here: \(gramine.path)/quote does not exist (not a Gramine enclave); run in simulation with --simulation DIR (a platform made by `marblerun simulation init DIR`)"
                    )
                }
            }
            switch source {
            case .gramine:
                guard GramineQuoteIssuer.isAvailable(at: gramine) else {
                    throw ValidationError("\(gramine.path)/quote does not exist: this is not a Gramine enclave")
                }
                MarbleCommand.report("quotes from Gramine's \(gramine.path)")
                return GramineQuoteIssuer(directory: gramine)
            case .simulation, .auto:
                guard let platformDirectory else {
                    throw ValidationError("simulation needs --simulation DIR (or EDG_MARBLE_SIMULATION)")
                }
                let platform = try SimulatedPlatform.load(from: URL(fileURLWithPath: platformDirectory))
                let enclave = try SimulatedEnclave.measuring(executable: program, signer: platform.defaultSigner)
                MarbleCommand.report(
                    "SIMULATION: \(program.path) measured as UniqueID \(Hex.encode(enclave.uniqueID)); no security")
                return SimulatedQuoteIssuer(platform: platform, enclave: enclave)
            }
        }
    }

    /// A progress line on standard error, prefixed so it stands apart from the program's output.
    static func report(_ line: String) {
        FileHandle.standardError.write(Data("marble: \(line)\n".utf8))
    }
}
