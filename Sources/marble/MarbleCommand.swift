import ArgumentParser
import Attestation
import AttestationPCCS
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
                how to trust the Coordinator: EDG_MARBLE_COORDINATOR_ROOT_CA (its root certificate, PEM \
                file), or EDG_MARBLE_COORDINATOR_ERA_CONFIG (an era config its quote must match; the \
                quote is fetched from EDG_MARBLE_COORDINATOR_CLIENT_ADDR, default HOST:4433, and checked \
                with the simulated platform, --collateral or --pccs). \
                In simulation (--simulation DIR or EDG_MARBLE_SIMULATION) the quote comes from the \
                simulated platform in DIR and the measured identity is PROGRAM itself: UniqueID = \
                SHA-256 of its file, SignerID = the platform's default signing key. There is no \
                security in simulation.

                Examples:
                  EDG_MARBLE_TYPE=backend EDG_MARBLE_COORDINATOR_ROOT_CA=root.pem \\
                    marble run --simulation sim -- ./server --port 8443
                  EDG_MARBLE_TYPE=backend EDG_MARBLE_COORDINATOR_ERA_CONFIG=era.json \\
                    marble run --simulation sim -- ./server
                """)

        @Option(help: "Simulated platform directory (EDG_MARBLE_SIMULATION); selects simulation.")
        var simulation: String?

        @Option(
            help: """
                Where quotes come from: auto (Gramine when GRAMINE-DIR/quote exists, else a TDX guest's \
                configfs-tsm when TSM-DIR/report exists, else simulation if a platform is given), gramine, \
                tdx or simulation (EDG_MARBLE_ATTESTATION).
                """)
        var attestation: AttestationSource?

        @Option(help: "Gramine's attestation interface (EDG_MARBLE_GRAMINE_DIR).")
        var gramineDir: String?

        @Option(help: "configfs-tsm of a TDX guest (EDG_MARBLE_TSM_DIR; default /sys/kernel/config/tsm).")
        var tsmDir: String?

        @Option(
            help:
                "Collateral for the Coordinator's real quote: a dcap-qvl JSON bundle or an Intel PCS folder (EDG_MARBLE_COLLATERAL)."
        )
        var collateral: String?

        @Option(help: "PCCS or Intel PCS base URL for the Coordinator's real quote (EDG_MARBLE_PCCS).")
        var pccs: String?

        @Option(
            help: """
                Intel QCNL configuration naming the collateral service for the Coordinator's real quote \
                (default /etc/sgx_default_qcnl.conf when it exists, else Intel's PCS; QCNL_CONF_PATH).
                """)
        var qcnlConfig: String?

        @Option(
            help: """
                PEM root CA the Coordinator's quote and collateral must chain to instead of Intel's SGX Root CA: \
                for test platforms only (EDG_MARBLE_SGX_ROOT_CA).
                """)
        var sgxRootCA: String?

        @Option(help: "Seconds to keep retrying while the Coordinator is unreachable.")
        var timeout: Int = 60

        @Argument(parsing: .captureForPassthrough, help: "The program and its arguments (after --).")
        var program: [String] = []

        enum AttestationSource: String, ExpressibleByArgument, CaseIterable {
            case auto, gramine, tdx, simulation
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
            let (issuer, evidence) = try quoteIssuer(for: URL(fileURLWithPath: path), environment: environment)
            let trust =
                configuration.coordinatorRoot != nil
                ? "trusted by the pinned root" : "trusted once its quote matches the era config"
            MarbleCommand.report(
                "Coordinator \(configuration.coordinatorAddress) (\(trust)), marble type \(configuration.marbleType)")
            let parameters = try await Marble.activate(
                configuration, quoteIssuer: issuer, coordinatorEvidence: evidence, timeout: .seconds(timeout),
                report: MarbleCommand.report)
            MarbleCommand.report("activated as \(parameters.uuid.uuidString.lowercased())")
            try MarbleLauncher.writeFiles(parameters)
            MarbleCommand.report(
                "wrote \(parameters.files.count) file(s), set \(parameters.env.count) variable(s); starting \(path)")
            try MarbleLauncher.exec(
                path, arguments: MarbleLauncher.arguments(parameters, default: command),
                environment: MarbleLauncher.environment(parameters, base: environment))
        }

        /// Gramine's `/dev/attestation` when present (or forced), else a TDX guest's configfs-tsm, else the simulated platform,
        /// where PROGRAM's own file is the measured identity; and what the Coordinator's quote is
        /// checked with when no root is pinned.
        func quoteIssuer(for program: URL, environment: [String: String]) throws -> (
            any QuoteIssuer, CoordinatorEvidence?
        ) {
            func setting(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
            let gramine = URL(fileURLWithPath: gramineDir ?? setting("EDG_MARBLE_GRAMINE_DIR") ?? "/dev/attestation")
            let tsm = URL(
                fileURLWithPath: tsmDir ?? setting("EDG_MARBLE_TSM_DIR") ?? TSMQuoteIssuer.defaultDirectory.path)
            let platformDirectory = simulation ?? setting("EDG_MARBLE_SIMULATION")
            var source = attestation ?? .auto
            if attestation == nil, let text = setting("EDG_MARBLE_ATTESTATION") {
                guard let chosen = AttestationSource(rawValue: text) else {
                    throw ValidationError("EDG_MARBLE_ATTESTATION=\(text): use auto, gramine, tdx or simulation")
                }
                source = chosen
            }
            if source == .auto {
                if GramineQuoteIssuer.isAvailable(at: gramine) {
                    source = .gramine
                } else if TSMQuoteIssuer.isAvailable(at: tsm) {
                    source = .tdx
                } else if platformDirectory != nil {
                    source = .simulation
                } else {
                    throw ValidationError(
                        "no quoting enclave here: \(gramine.path)/quote does not exist (not a Gramine enclave) and \(tsm.path)/report neither (not a TDX guest); run in simulation with --simulation DIR (a platform made by `marblerun simulation init DIR`)"
                    )
                }
            }
            switch source {
            case .gramine:
                guard GramineQuoteIssuer.isAvailable(at: gramine) else {
                    throw ValidationError("\(gramine.path)/quote does not exist: this is not a Gramine enclave")
                }
                MarbleCommand.report("quotes from Gramine's \(gramine.path)")
                return (GramineQuoteIssuer(directory: gramine), try realEvidence(environment))
            case .tdx:
                guard TSMQuoteIssuer.isAvailable(at: tsm) else {
                    throw ValidationError(
                        "\(tsm.path)/report does not exist: this is not a TDX guest with configfs-tsm")
                }
                MarbleCommand.report("quotes from the TDX guest's configfs-tsm \(tsm.path)")
                return (TSMQuoteIssuer(directory: tsm), try realEvidence(environment))
            case .simulation, .auto:
                guard let platformDirectory else {
                    throw ValidationError("simulation needs --simulation DIR (or EDG_MARBLE_SIMULATION)")
                }
                let platform = try SimulatedPlatform.load(from: URL(fileURLWithPath: platformDirectory))
                let enclave = try SimulatedEnclave.measuring(executable: program, signer: platform.defaultSigner)
                MarbleCommand.report(
                    "SIMULATION: \(program.path) measured as UniqueID \(Hex.encode(enclave.uniqueID)); no security")
                return (SimulatedQuoteIssuer(platform: platform, enclave: enclave), .simulated(platform))
            }
        }

        /// Intel's root with collateral from a file, or from the collateral service a PCCS URL or
        /// Intel's QCNL configuration names (default: Intel's PCS).
        func realEvidence(_ environment: [String: String]) throws -> CoordinatorEvidence? {
            func setting(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
            var verifier = QuoteVerifier()
            if let path = sgxRootCA ?? setting("EDG_MARBLE_SGX_ROOT_CA") {
                do {
                    verifier = QuoteVerifier(trustedRoot: try TrustAnchors.root(pemFile: path))
                } catch {
                    throw ValidationError(error.message)
                }
                MarbleCommand.report(
                    "WARNING: the Coordinator's quote is checked against \(path), not Intel's SGX Root CA")
            }
            if let path = collateral ?? setting("EDG_MARBLE_COLLATERAL") {
                let provider = FileCollateralProvider(location: URL(fileURLWithPath: path))
                return CoordinatorEvidence(verifier: verifier) { quote in
                    try await provider.collateral(for: quote)
                }
            }
            let service: QCNLConfiguration
            do {
                service =
                    try QCNLConfiguration.resolve(
                        url: pccs ?? setting("EDG_MARBLE_PCCS"), path: qcnlConfig ?? setting("QCNL_CONF_PATH"),
                        defaults: true) ?? .intel
            } catch {
                throw ValidationError(error.message)
            }
            MarbleCommand.report(
                "the Coordinator's collateral from \(PCCSCollateralProvider.displayed(service.collateralURL))")
            return CoordinatorEvidence(verifier: verifier) { quote in
                try await PCCSCollateralProvider.collateral(for: quote, from: service)
            }
        }
    }

    /// A progress line on standard error, prefixed so it stands apart from the program's output.
    static func report(_ line: String) {
        FileHandle.standardError.write(Data("marble: \(line)\n".utf8))
    }
}
