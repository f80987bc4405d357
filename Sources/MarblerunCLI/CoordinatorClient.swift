import ArgumentParser
import AsyncHTTPClient
import Attestation
import AttestationPCCS
import Crypto
import Foundation
import JSONText
import NIOCore
import NIOHTTP1
import NIOSSL
import PKCS11
import X509

/// A refusal the CLI reports in one line and exits non-zero for.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A Coordinator's verified quote and everything it was verified with.
struct CoordinatorEvidence {
    var root: Certificate
    var chainPEM: String
    var quote: [UInt8]
    var collateral: Collateral
    var verifier: QuoteVerifier
    var policy: PackagePolicy
}

/// How the CLI reaches a Coordinator and decides to trust it (MarbleRun's global flags).
struct ConnectionOptions: ParsableArguments {
    @Option(
        name: .customLong("coordinator-cert"),
        help: "Where the verified Coordinator root certificate is kept (PEM) and read from later.")
    var coordinatorCert: String = ConnectionOptions.defaultCertificatePath

    @Option(
        name: .customLong("era-config"),
        help:
            "Expected Coordinator identity (JSON: UniqueID or SignerID/ProductID/SecurityVersion, Debug, AcceptedTCBStatuses); its quote is verified against it and the root pinned."
    )
    var eraConfig: String?

    @Option(
        name: .customLong("accepted-tcb-statuses"),
        help: "Comma-separated TCB statuses to accept besides UpToDate (overrides the era config's).")
    var acceptedTCBStatuses: String?

    @Option(
        name: .customLong("accepted-advisories"),
        help:
            "Comma-separated Intel security advisories (INTEL-SA-…) to accept for a TCB status that lists advisories (overrides the era config's AcceptedAdvisories)."
    )
    var acceptedAdvisories: String?

    @Option(
        name: .customLong("save-sgx-quote"),
        help: "Write the Coordinator's quote (raw bytes), once it has verified, to this file.")
    var saveSGXQuote: String?

    @Option(help: "Hex nonce the Coordinator's quote must bind (default: a fresh random one).")
    var nonce: String?

    @Option(help: "Trust quotes from the simulated platform in this directory (simulation only, no security).")
    var simulation: String?

    @Option(help: "Collateral for real quotes: a dcap-qvl JSON bundle or an Intel PCS folder.")
    var collateral: String?

    @Option(help: "PCCS or Intel PCS base URL for real quotes' collateral (replaces the QCNL file's URL).")
    var pccs: String?

    @Option(
        help: """
            Intel QCNL configuration naming the collateral service for real quotes (default \
            /etc/sgx_default_qcnl.conf when it exists, else Intel's PCS; QCNL_CONF_PATH).
            """)
    var qcnlConfig: String?

    @Flag(name: [.customShort("i"), .long], help: "Skip verifying the Coordinator (no quote check, no TLS check).")
    var insecure = false

    @Flag(help: "Print results as JSON.")
    var json = false

    func validate() throws {
        if saveSGXQuote != nil, eraConfig == nil || insecure {
            throw ValidationError(
                "--save-sgx-quote needs --era-config: the quote is fetched only when the Coordinator is verified")
        }
    }

    /// The subject name of a Coordinator's root certificate.
    static let rootName = "MarbleRun Coordinator"

    static var defaultCertificatePath: String {
        let base =
            ProcessInfo.processInfo.environment["XDG_CONFIG_HOME"]
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".config").path
        return base + "/marblerun/coordinator-cert.pem"
    }

    /// A client that trusts the Coordinator at `address` (HOST:PORT): verified now against the
    /// era config (and pinned unless `pin` is false), pinned earlier, or — only with `-i` — not at all.
    func connect(_ address: String, identity: UserIdentity? = nil, pin: Bool = true) async throws
        -> CoordinatorClient
    {
        let baseURL = "https://\(address)"
        if insecure {
            FileHandle.standardError.write(
                Data("warning: --insecure: the Coordinator is not verified; anyone on the network could answer\n".utf8))
            return try CoordinatorClient(baseURL: baseURL, root: nil, identity: identity)
        }
        if let eraConfig {
            let era: EraConfig
            do {
                era = try EraConfig.read(eraConfig)
            } catch {
                throw CLIError(error.message)
            }
            let root = try await verify(era, baseURL: baseURL)
            // A Coordinator in recovery mode serves a temporary certificate: never pin that one.
            if pin, root.subject.description == "CN=\(Self.rootName)" { try save(root) }
            return try CoordinatorClient(baseURL: baseURL, root: root, identity: identity)
        }
        guard let data = FileManager.default.contents(atPath: coordinatorCert),
            let root = try? Certificate(pemEncoded: String(decoding: data, as: UTF8.self))
        else {
            throw CLIError(
                "no verified Coordinator certificate at \(coordinatorCert): give --era-config FILE (with --simulation DIR for a simulated Coordinator) to verify its quote, or -i to skip verification"
            )
        }
        return try CoordinatorClient(baseURL: baseURL, root: root, identity: identity)
    }

    /// Fetches `/api/v2/quote` with a nonce and checks that the quote verifies, binds the root
    /// certificate and the nonce, and shows the era config's identity. Returns the root.
    func verify(_ era: EraConfig, baseURL: String) async throws -> Certificate {
        let nonceBytes: [UInt8]
        if let nonce {
            guard let bytes = Hex.decode(nonce), !bytes.isEmpty else { throw CLIError("--nonce must be hex digits") }
            nonceBytes = bytes
        } else {
            nonceBytes = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        }
        return try await evidence(era, baseURL: baseURL, nonce: nonceBytes).root
    }

    /// The Coordinator's quote over `nonce`, verified as ``verify(_:baseURL:)`` does, with what
    /// it was verified with.
    func evidence(_ era: EraConfig, baseURL: String, nonce nonceBytes: [UInt8]) async throws -> CoordinatorEvidence {
        let unverified = try CoordinatorClient(baseURL: baseURL, root: nil, identity: nil)
        let data = try await unverified.call(.GET, "/api/v2/quote?nonce=\(CoordinatorQuote.nonceParameter(nonceBytes))")
        guard case .object(let members) = data,
            case .string(let chainText)? = members.first(where: { $0.key == "cert" })?.value,
            case .string(let quoteText)? = members.first(where: { $0.key == "quote" })?.value,
            let quoteBytes = Data(base64Encoded: quoteText)
        else { throw CLIError("the Coordinator's quote answer is malformed") }
        var policy = era.policy
        if let acceptedTCBStatuses {
            policy.acceptedTCBStatuses = Self.list(acceptedTCBStatuses).map(TCBStatus.init(rawValue:))
        }
        if let acceptedAdvisories { policy.acceptedAdvisories = Self.list(acceptedAdvisories) }
        let root: Certificate
        let verifier: QuoteVerifier
        let collateral: Collateral
        do {
            let answer = try CoordinatorQuote(chainPEM: chainText, quote: Array(quoteBytes))
            (verifier, collateral) = try await trust(for: answer.quote)
            root = try answer.verifiedRoot(
                nonce: nonceBytes, policy: policy, verifier: verifier, collateral: collateral)
        } catch let error as AttestationError where error.code == .policy {
            throw CLIError(error.message)
        } catch let error as AttestationError {
            throw CLIError("the Coordinator's quote does not verify: \(error.message) [\(error.code)]")
        }
        if let saveSGXQuote {
            do {
                try quoteBytes.write(to: URL(fileURLWithPath: saveSGXQuote))
            } catch {
                throw CLIError("cannot write the quote to \(saveSGXQuote): \(error.localizedDescription)")
            }
        }
        return CoordinatorEvidence(
            root: root, chainPEM: chainText, quote: Array(quoteBytes), collateral: collateral, verifier: verifier,
            policy: policy)
    }

    /// The verifier for quotes of the Coordinator's platform: the simulated platform's root with
    /// `--simulation`, else Intel's.
    func quoteVerifier() throws -> QuoteVerifier {
        guard let simulation else { return QuoteVerifier() }
        return try SimulatedPlatform.load(from: URL(fileURLWithPath: simulation)).verifier
    }

    /// A comma-separated flag's items, trimmed, empty ones dropped.
    private static func list(_ text: String) -> [String] {
        text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// The verifier and collateral for the Coordinator's quote: the simulated platform's root (and
    /// its collateral unless a collateral service is named), or Intel's root with collateral from a
    /// file or a collateral service (a PCCS URL, the QCNL configuration, else Intel's PCS).
    private func trust(for quote: Quote) async throws -> (QuoteVerifier, Collateral) {
        let qcnlPath =
            qcnlConfig ?? ProcessInfo.processInfo.environment["QCNL_CONF_PATH"].flatMap { $0.isEmpty ? nil : $0 }
        if let simulation {
            let platform = try SimulatedPlatform.load(from: URL(fileURLWithPath: simulation))
            guard pccs != nil || qcnlPath != nil else { return (platform.verifier, platform.collateral) }
            return (platform.verifier, try await fetchCollateral(for: quote, path: qcnlPath, defaults: false))
        }
        if let collateral {
            return (QuoteVerifier(), try FileCollateralProvider(location: URL(fileURLWithPath: collateral)).load())
        }
        return (QuoteVerifier(), try await fetchCollateral(for: quote, path: qcnlPath, defaults: true))
    }

    private func fetchCollateral(for quote: Quote, path: String?, defaults: Bool) async throws -> Collateral {
        let service: QCNLConfiguration
        do {
            service = try QCNLConfiguration.resolve(url: pccs, path: path, defaults: defaults) ?? .intel
        } catch {
            throw CLIError(error.message)
        }
        do throws(AttestationError) {
            return try await PCCSCollateralProvider.collateral(for: quote, from: service)
        } catch {
            guard error.code == .collateralUnavailable else { throw error }
            throw CLIError(
                "\(error.message); name a reachable collateral service with --pccs URL or --qcnl-config FILE, or give --collateral PATH (--simulation DIR for a simulated Coordinator)"
            )
        }
    }

    private func save(_ root: Certificate) throws {
        let url = URL(fileURLWithPath: coordinatorCert)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(try root.serializeAsPEM().pemString.utf8).write(to: url)
    }

}

/// A user's client certificate and key: PEM files (MarbleRun's `-c/--cert` and `-k/--key`), or
/// a PKCS #11 token that holds both (`--pkcs11-config` with the key's and the certificate's id
/// or label), whose key never leaves it.
struct UserOptions: ParsableArguments {
    @Option(name: [.customShort("c"), .long], help: "The user's client certificate (PEM), as in the manifest.")
    var cert: String?

    @Option(name: [.customShort("k"), .long], help: "The user's private key (PEM).")
    var key: String?

    @OptionGroup var token: TokenKeyOptions

    @Option(name: .customLong("pkcs11-cert-id"), help: "The certificate's CKA_ID in the token (its text's bytes).")
    var pkcs11CertID: String?

    @Option(name: .customLong("pkcs11-cert-label"), help: "The certificate's CKA_LABEL in the token.")
    var pkcs11CertLabel: String?

    func validate() throws {
        if token.pkcs11Config != nil {
            guard cert == nil, key == nil else {
                throw ValidationError("give either -c/-k or --pkcs11-config, not both")
            }
            guard pkcs11CertID != nil || pkcs11CertLabel != nil else {
                throw ValidationError("--pkcs11-config needs --pkcs11-cert-id or --pkcs11-cert-label")
            }
        } else {
            guard cert != nil, key != nil else {
                throw ValidationError("name your user identity: -c CERT and -k KEY, or --pkcs11-config FILE")
            }
            guard pkcs11CertID == nil, pkcs11CertLabel == nil else {
                throw ValidationError("--pkcs11-cert-id and --pkcs11-cert-label need --pkcs11-config")
            }
        }
    }

    var identity: UserIdentity {
        if let configuration = token.pkcs11Config {
            return .token(
                configuration: configuration, key: token.selector,
                certificate: .init(id: pkcs11CertID, label: pkcs11CertLabel))
        }
        return .files(certificate: cert ?? "", key: key ?? "")
    }
}

/// Where a user's TLS client identity is.
enum UserIdentity: Sendable {
    case files(certificate: String, key: String)
    case token(configuration: String, key: PKCS11Token.Selector, certificate: PKCS11Token.Selector)

    /// The certificate chain and key for TLS.
    func load() throws -> ([NIOSSLCertificateSource], NIOSSLPrivateKeySource) {
        switch self {
        case .files(let certificatePath, let keyPath):
            do {
                let chain = try NIOSSLCertificate.fromPEMFile(certificatePath).map {
                    NIOSSLCertificateSource.certificate($0)
                }
                return (chain, .privateKey(try NIOSSLPrivateKey(file: keyPath, format: .pem)))
            } catch {
                throw CLIError("cannot read the user certificate \(certificatePath) or key \(keyPath)")
            }
        case .token(let configuration, let keySelector, let certificateSelector):
            let token = try openToken(configuration)
            let (key, der) = try onToken { () throws(PKCS11Error) in
                let certificate = try token.find(.certificate, certificateSelector)
                return (try token.find(.privateKey, keySelector), try token.attribute(.value, of: certificate))
            }
            guard let certificate = try? Certificate(derEncoded: der),
                let nioCertificate = try? NIOSSLCertificate(bytes: der, format: .der)
            else { throw CLIError("the token's certificate with \(certificateSelector) is not an X.509 certificate") }
            let custom = try TokenTLSKey(token: token, key: key, certificate: certificate)
            return ([.certificate(nioCertificate)], .privateKey(NIOSSLPrivateKey(customPrivateKey: custom)))
        }
    }
}

/// The client REST API with the JSend envelope unwrapped.
struct CoordinatorClient {
    let baseURL: String
    /// The pinned Coordinator root; nil with `-i`.
    let root: Certificate?
    let tls: TLSConfiguration

    init(baseURL: String, root: Certificate?, identity: UserIdentity?) throws {
        self.baseURL = baseURL
        self.root = root
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        if let root {
            tls.trustRoots = .certificates([try NIOSSLCertificate(bytes: DERBytes.of(root), format: .der)])
            // The root is pinned: it, not the host name, identifies the Coordinator.
            tls.certificateVerification = .noHostnameVerification
        } else {
            tls.certificateVerification = .none
        }
        if let identity {
            (tls.certificateChain, tls.privateKey) = try identity.load()
        }
        self.tls = tls
    }

    /// The `data` of a JSend `success`; a `fail` or `error` becomes a ``CLIError`` with its message.
    func call(_ method: HTTPMethod, _ path: String, body: JSONValue? = nil) async throws -> JSONValue {
        let client = HTTPClient(
            eventLoopGroupProvider: .singleton, configuration: HTTPClient.Configuration(tlsConfiguration: tls))
        do {
            var request = HTTPClientRequest(url: baseURL + path)
            request.method = method
            if let body {
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(bytes: body.serialized()))
            }
            let response = try await client.execute(request, timeout: .seconds(60))
            let bytes = Array(buffer: try await response.body.collect(upTo: 64 << 20))
            try await client.shutdown()
            return try Self.unwrap(bytes, status: Int(response.status.code))
        } catch let error as CLIError {
            try? await client.shutdown()
            throw error
        } catch {
            try? await client.shutdown()
            throw CLIError("cannot reach the Coordinator at \(baseURL): \(error)")
        }
    }

    static func unwrap(_ bytes: [UInt8], status: Int) throws -> JSONValue {
        guard case .object(let members)? = try? JSONParser().parse(bytes) else {
            throw CLIError("the Coordinator answered HTTP \(status) without a JSend body")
        }
        let field = { (name: String) in members.first(where: { $0.key == name })?.value }
        if case .string("success")? = field("status") { return field("data") ?? .null }
        if case .string(let message)? = field("message") { throw CLIError("\(message) (HTTP \(status))") }
        throw CLIError("the Coordinator refused the request (HTTP \(status))")
    }
}

/// DER of a certificate (swift-certificates keeps it only through a serializer).
enum DERBytes {
    static func of(_ certificate: Certificate) -> [UInt8] {
        (try? certificate.serializeAsPEM().derBytes) ?? []
    }
}
