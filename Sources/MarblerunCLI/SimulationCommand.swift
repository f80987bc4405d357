import ArgumentParser
import Attestation
import Crypto
import Foundation

/// `marblerun simulation …`
struct SimulationCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulation",
        abstract: "Manage a simulated SGX platform (development only: it gives no security).",
        subcommands: [SimulationInitCommand.self])
}

/// `marblerun simulation init DIR`
struct SimulationInitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a simulated SGX platform in DIR.",
        discussion: """
            Generates a test root CA, PCK CA and PCK certificate (with a real SGX extension), a TCB \
            signing certificate, signed TCB Info and QE Identity, CRLs, a quote signing key and a \
            default enclave signing key. Quotes of this platform verify on the same path as real \
            ones, with its root as the trust anchor. Anyone who can read DIR can forge quotes.
            """
    )

    @Argument(help: "The directory to create (or to replace with --force).")
    var directory: String

    @Flag(help: "Replace a simulated platform that already exists in the directory.")
    var force = false

    func run() async throws {
        let url = URL(fileURLWithPath: directory)
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("platform.json").path) && !force {
            printError(
                "error: \(directory) already holds a simulated platform; use --force to replace it (its quotes will no longer verify)"
            )
            throw ExitCode(1)
        }
        let platform = try SimulatedPlatform.generate()
        try platform.write(to: url)
        let fingerprint = SHA256.hash(data: try platform.rootCertificate.serializeAsPEM().derBytes)
        print("SIMULATION: created an INSECURE simulated SGX platform in \(directory)")
        print("root CA SHA-256: \(Hex.encode(fingerprint))")
        print("default SignerID: \(QuoteReport.hex(platform.defaultSigner.signerID))")
        print("collateral valid until: \(ISO8601DateFormatter().string(from: platform.collateral.nextUpdate))")
    }
}

/// `marblerun package-info EXECUTABLE`
struct PackageInfoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "package-info",
        abstract: "Print the simulated UniqueID and SignerID of an executable, for a manifest package.",
        discussion: """
            UniqueID is the SHA-256 of the executable. SignerID is the SHA-256 of the signing key: \
            the simulation's default key (--simulation) or the key of a signing configuration \
            (--signer-config: {"SigningKey": "key.pem", "ProductID": 1, "SecurityVersion": 2, "Debug": false}).
            """
    )

    @Argument(help: "The executable.")
    var executable: String

    @Option(help: "A simulated platform directory whose default signing key signs the executable.")
    var simulation: String?

    @Option(help: "A signing configuration (JSON) naming the signing key, ProductID, SecurityVersion and Debug.")
    var signerConfig: String?

    @Flag(help: "Print the result as JSON (manifest package fields).")
    var json = false

    func run() async throws {
        do {
            let url = URL(fileURLWithPath: executable)
            let uniqueID = try SimulatedEnclave.uniqueID(of: url)
            var signer: EnclaveSigner?
            if let signerConfig {
                signer = try EnclaveSigner.load(configuration: URL(fileURLWithPath: signerConfig))
            } else if let simulation {
                signer = try SimulatedPlatform.load(from: URL(fileURLWithPath: simulation)).defaultSigner
            }
            if json {
                var object: [String: Any] = ["UniqueID": QuoteReport.hex(uniqueID)]
                if let signer {
                    object["SignerID"] = QuoteReport.hex(signer.signerID)
                    object["ProductID"] = Int(signer.productID)
                    object["SecurityVersion"] = Int(signer.securityVersion)
                    object["Debug"] = signer.debug
                }
                print(QuoteReport.serialize(object))
            } else {
                print("UniqueID: \(QuoteReport.hex(uniqueID))")
                if let signer {
                    print("SignerID: \(QuoteReport.hex(signer.signerID))")
                    print("ProductID: \(signer.productID)")
                    print("SecurityVersion: \(signer.securityVersion)")
                    print("Debug: \(signer.debug)")
                } else {
                    print("SignerID: (give --simulation DIR or --signer-config FILE)")
                }
            }
        } catch {
            printError("error: \(error.message)")
            throw ExitCode(1)
        }
    }
}
