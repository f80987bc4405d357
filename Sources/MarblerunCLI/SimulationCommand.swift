import ArgumentParser
import Attestation
import Crypto
import Foundation

/// `marblerun simulation …`
struct SimulationCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulation",
        abstract: "Manage a simulated SGX and TDX platform (development only: it gives no security).",
        subcommands: [SimulationInitCommand.self])
}

/// `marblerun simulation init DIR`
struct SimulationInitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a simulated SGX and TDX platform in DIR.",
        discussion: """
            Generates a test root CA, PCK CA and PCK certificate (with a real SGX extension), a TCB \
            signing certificate, signed TCB Info and QE Identity for SGX and for TDX (with a TDX \
            module identity and the TD quoting enclave), CRLs, a quote signing key and a default \
            enclave signing key. Quotes of this platform verify on the same path as real ones, with \
            its root as the trust anchor. Anyone who can read DIR can forge quotes.
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
        print("SIMULATION: created an INSECURE simulated SGX and TDX platform in \(directory)")
        print("root CA SHA-256: \(Hex.encode(fingerprint))")
        print("default SignerID: \(QuoteReport.hex(platform.defaultSigner.signerID))")
        print("collateral valid until: \(ISO8601DateFormatter().string(from: platform.collateral.nextUpdate))")
        print("collateral (Intel PCS layout): \(directory)/collateral, TDX: \(directory)/collateral/tdx")
    }
}

/// `marblerun package-info ENCLAVE`
struct PackageInfoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "package-info",
        abstract:
            "Print an enclave's UniqueID, SignerID, ProductID, SecurityVersion and Debug, for a manifest package.",
        discussion: """
            A signed SGX enclave: a Gramine .sig file or instance directory, an Occlum instance \
            directory, an SGX SDK or Occlum enclave (ELF section .note.sgxmeta), an EGo or Open Enclave \
            binary (section .oeinfo). The values come from its SIGSTRUCT, whose RSA-3072 signature is \
            checked: "signature invalid" (exit 1) when it does not verify.

            Simulation (--simulation DIR or --signer-config FILE): UniqueID is the SHA-256 of the \
            executable; SignerID the SHA-256 of the signing key, the simulation's default key or the key \
            of a signing configuration ({"SigningKey": "key.pem", "ProductID": 1, "SecurityVersion": 2, "Debug": false}).
            """
    )

    @Argument(help: "The enclave (file or instance directory), or in simulation the executable.")
    var executable: String

    @Option(help: "A simulated platform directory whose default signing key signs the executable.")
    var simulation: String?

    @Option(help: "A signing configuration (JSON) naming the signing key, ProductID, SecurityVersion and Debug.")
    var signerConfig: String?

    @Flag(help: "Print the result as JSON (manifest package fields).")
    var json = false

    func run() async throws {
        if simulation == nil && signerConfig == nil {
            let valid: Bool
            do {
                valid = try printEnclave()
            } catch {
                printError("error: \(error.message)")
                throw ExitCode(1)
            }
            guard valid else { throw ExitCode(1) }
            return
        }
        do {
            let url = URL(fileURLWithPath: executable)
            let uniqueID = try SimulatedEnclave.uniqueID(of: url)
            var signer: EnclaveSigner?
            if let signerConfig {
                signer = try EnclaveSigner.load(configuration: URL(fileURLWithPath: signerConfig))
            } else if let simulation {
                signer = try SimulatedPlatform.load(from: URL(fileURLWithPath: simulation)).defaultSigner
            }
            print(
                package(
                    uniqueID: uniqueID, signerID: signer?.signerID, productID: signer?.productID,
                    securityVersion: signer?.securityVersion, debug: signer?.debug))
        } catch {
            printError("error: \(error.message)")
            throw ExitCode(1)
        }
    }

    /// Prints a real enclave's values from its SIGSTRUCT; false when its signature does not verify.
    private func printEnclave() throws(AttestationError) -> Bool {
        let (sigstruct, file) = try EnclaveImage.sigstruct(at: executable)
        print(
            package(
                uniqueID: sigstruct.uniqueID, signerID: sigstruct.signerID, productID: sigstruct.productID,
                securityVersion: sigstruct.securityVersion, debug: sigstruct.debug))
        guard sigstruct.signatureIsValid else {
            printError(
                "error: signature invalid: the SIGSTRUCT in \(file) does not verify under its own RSA-3072 key; the enclave was changed after signing or is corrupt"
            )
            return false
        }
        if !json { print("Signature: valid (RSA-3072, the key whose SHA-256 is the SignerID)") }
        return true
    }

    private func package(
        uniqueID: [UInt8], signerID: [UInt8]?, productID: UInt16?, securityVersion: UInt16?, debug: Bool?
    ) -> String {
        if json {
            var object: [String: Any] = ["UniqueID": QuoteReport.hex(uniqueID)]
            if let signerID, let productID, let securityVersion, let debug {
                object["SignerID"] = QuoteReport.hex(signerID)
                object["ProductID"] = Int(productID)
                object["SecurityVersion"] = Int(securityVersion)
                object["Debug"] = debug
            }
            return QuoteReport.serialize(object)
        }
        guard let signerID, let productID, let securityVersion, let debug else {
            return "UniqueID: \(QuoteReport.hex(uniqueID))\nSignerID: (give --simulation DIR or --signer-config FILE)"
        }
        return """
            UniqueID: \(QuoteReport.hex(uniqueID))
            SignerID: \(QuoteReport.hex(signerID))
            ProductID: \(productID)
            SecurityVersion: \(securityVersion)
            Debug: \(debug)
            """
    }
}
