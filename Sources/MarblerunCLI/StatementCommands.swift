import ArgumentParser
import Attestation
import ClusterStatement
import Crypto
import Foundation
import JSONText
import Manifest

/// `marblerun attest ADDR -o statement.json --era-config FILE`
struct AttestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attest",
        abstract: "Verify the Coordinator and write one statement for the whole cluster, checkable offline.",
        discussion: """
            The statement (docs/cluster-statement.md) holds the Coordinator's quote over a nonce \
            derived from the statement's time, the collateral it was verified with, the Coordinator's \
            certificates, the manifest with the root's signature and the signed update log. Anyone \
            can check it later with `marblerun verify-statement`, with no network and without \
            trusting whoever hands it over. The statement is checked the same way before it is written.
            """)

    @Argument(help: "The Coordinator's client API, HOST:PORT.") var address: String
    @OptionGroup var connection: ConnectionOptions
    @Option(name: [.customShort("o"), .long], help: "Write the statement to this file (default: standard output).")
    var output: String?

    func validate() throws {
        guard connection.eraConfig != nil, !connection.insecure else {
            throw ValidationError("attest verifies the Coordinator's quote: give --era-config FILE (not -i)")
        }
    }

    func run() async throws {
        let era: EraConfig
        do {
            era = try EraConfig.read(connection.eraConfig ?? "")
        } catch {
            throw CLIError(error.message)
        }
        let time = ClusterStatement.timestamp(Date())
        let salt = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        let baseURL = "https://\(address)"
        let evidence = try await connection.evidence(
            era, baseURL: baseURL, nonce: ClusterStatement.nonce(time: time, salt: salt))
        let client = try CoordinatorClient(baseURL: baseURL, root: evidence.root, identity: nil)
        let answer = try await client.call(.GET, "/api/v2/manifest")
        guard let manifest = answer["manifest"]?.bytes, let signature = answer["manifestSignatureRootECDSA"]?.bytes
        else { throw CLIError("no manifest is set yet: a statement covers a cluster with a manifest") }
        let log = try await client.call(.GET, "/api/v2/update")
        guard case .array(let lines)? = log["updateLog"] else { throw CLIError("the update log is malformed") }
        let statement = ClusterStatement(
            time: time, salt: salt, quote: evidence.quote, certificateChain: evidence.chainPEM,
            collateral: try JSONParser().parse(try evidence.collateral.dcapQVLBundle()), manifest: manifest,
            manifestSignature: signature, updateLog: lines.compactMap(\.stringValue))
        let proof: StatementProof
        do {
            proof = try StatementVerifier(verifier: evidence.verifier, policy: evidence.policy).verify(statement)
        } catch {
            throw CLIError("the Coordinator's answers do not make a statement that verifies: \(error)")
        }
        try MarblerunCLI.output(statement.serialized(), to: output)
        FileHandle.standardError.write(Data(Self.summary(proof).utf8))
    }

    static func summary(_ proof: StatementProof) -> String {
        let quote = proof.coordinator
        let last = proof.log.last.map { "entry \($0.sequence), \($0.time)" } ?? "empty"
        return """
            verified: the Coordinator's quote (UniqueID \(Hex.encode(quote.uniqueID)), SignerID \
            \(Hex.encode(quote.signerID)), ProductID \(quote.productID), SecurityVersion \(quote.securityVersion), \
            TCB \(quote.tcbStatus.rawValue)) at \(ClusterStatement.timestamp(proof.checkedAt))
            verified: it binds the root certificate \(proof.root.subject) and the statement's time \
            \(ClusterStatement.timestamp(proof.statementTime))
            verified: the update log, \(proof.log.count) entries signed by that root, chain intact (last: \(last))
            verified: the manifest \(proof.manifestFingerprint), the one the log last recorded, signed by that root

            """
    }
}

/// `marblerun verify-statement FILE --era-config FILE [--manifest FILE] [--at TIME]`
struct VerifyStatementCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-statement",
        abstract: "Check a cluster statement offline and print what it proves.",
        discussion: """
            Nothing is sent anywhere. The quote and its collateral are checked at --at (RFC 3339; \
            default now: give the statement's own time to check it as of when it was made), against \
            Intel's SGX root CA or, with --simulation DIR, the simulated platform's. A statement with \
            any changed byte is refused, naming the part.
            """)

    @Argument(help: "The statement (marblerun attest -o).") var statement: String
    @Option(name: .customLong("era-config"), help: "The Coordinator identity to expect (as for every command).")
    var eraConfig: String
    @Option(help: "The manifest file (JSON or YAML) the statement's manifest must be.") var manifest: String?
    @Option(help: "Check the quote and the collateral as of this RFC 3339 time (default: now).") var at: String?
    @Option(help: "Trust the simulated platform in this directory instead of Intel (simulation only).")
    var simulation: String?
    @Option(
        name: .customLong("accepted-tcb-statuses"), help: "TCB statuses to accept (overrides the era config's).")
    var acceptedTCBStatuses: String?
    @Option(name: .customLong("accepted-advisories"), help: "Advisories to accept (overrides the era config's).")
    var acceptedAdvisories: String?
    @Flag(help: "Print what was proven as JSON.") var json = false

    func run() throws {
        guard let data = FileManager.default.contents(atPath: statement) else {
            throw CLIError("cannot read \(statement)")
        }
        guard data.count <= 16 << 20 else { throw CLIError("\(statement) is larger than 16 MiB: not a statement") }
        var policy: PackagePolicy
        do {
            policy = try EraConfig.read(eraConfig).policy
        } catch {
            throw CLIError(error.message)
        }
        if let acceptedTCBStatuses {
            policy.acceptedTCBStatuses = acceptedTCBStatuses.split(separator: ",").map {
                TCBStatus(rawValue: $0.trimmingCharacters(in: .whitespaces))
            }
        }
        if let acceptedAdvisories {
            policy.acceptedAdvisories = acceptedAdvisories.split(separator: ",").map {
                $0.trimmingCharacters(in: .whitespaces)
            }
        }
        var time = Date()
        if let at {
            guard let parsed = try? Date(at, strategy: .iso8601) else {
                throw CLIError("--at \(at.prefix(40)) is not an RFC 3339 time (e.g. 2026-12-03T20:00:00Z)")
            }
            time = parsed
        }
        let verifier: QuoteVerifier
        do {
            verifier =
                try simulation.map { try SimulatedPlatform.load(from: URL(fileURLWithPath: $0)).verifier }
                ?? QuoteVerifier()
        } catch {
            throw CLIError("\(error)")
        }
        let expected = try manifest.map { try manifestJSON($0) }
        let proof: StatementProof
        do {
            let parsed = try ClusterStatement(parsing: Array(data))
            proof = try StatementVerifier(verifier: verifier, policy: policy).verify(
                parsed, at: time, expectedManifest: expected)
        } catch {
            throw CLIError("the statement does not verify: \(error)")
        }
        if json {
            let quote = proof.coordinator
            let value = JSONValue.object([
                JSONMember("uniqueID", .string(Hex.encode(quote.uniqueID))),
                JSONMember("signerID", .string(Hex.encode(quote.signerID))),
                JSONMember("productID", .number(String(quote.productID))),
                JSONMember("securityVersion", .number(String(quote.securityVersion))),
                JSONMember("tcbStatus", .string(quote.tcbStatus.rawValue)),
                JSONMember("statementTime", .string(ClusterStatement.timestamp(proof.statementTime))),
                JSONMember("checkedAt", .string(ClusterStatement.timestamp(proof.checkedAt))),
                JSONMember("root", .string(proof.root.subject.description)),
                JSONMember("manifestFingerprint", .string(proof.manifestFingerprint)),
                JSONMember("manifestMatchesFile", expected == nil ? .null : .bool(true)),
                JSONMember("logEntries", .number(String(proof.log.count))),
            ])
            print(String(decoding: value.serialized(), as: UTF8.self))
        } else {
            print(AttestCommand.summary(proof), terminator: "")
            if let manifest { print("verified: the manifest is exactly \(manifest)") }
        }
    }
}
