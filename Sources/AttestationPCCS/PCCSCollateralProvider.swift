import AsyncHTTPClient
import Attestation
import Foundation
import NIOCore
import NIOSSL
import X509

/// Collateral from a PCCS or Intel's PCS over HTTPS (API v4), cached until its `nextUpdate`.
///
/// For a quote it reads the FMSPC and the issuing CA (Processor or Platform) from the PCK chain
/// the quote carries, then fetches the TCB Info (`/{sgx|tdx}/certification/v4/tcb?fmspc=`), the
/// QE Identity (`…/qe/identity`), the PCK CRL (`/sgx/certification/v4/pckcrl?ca=…&encoding=der`)
/// and the root CA CRL (`/sgx/certification/v4/rootcacrl`, hex as PCCS serves it, or DER), with
/// the issuer chains from the response headers. TCB Info and QE Identity keep the exact bytes
/// Intel signed. The verifier checks everything; this only fetches.
public actor PCCSCollateralProvider: CollateralProvider {
    struct Key: Hashable {
        var tdx: Bool
        var fmspc: String
        var ca: String
    }

    public let baseURL: String
    private let client: HTTPClient
    private let rootCACRLURL: String?
    private let timeout: TimeAmount
    private let now: @Sendable () -> Date
    private var cache: [Key: Collateral] = [:]
    /// Fetches under way: concurrent quotes of one platform wait for one fetch.
    private var inFlight: [Key: Task<Result<Collateral, AttestationError>, Never>] = [:]
    /// Responses larger than this are refused (collateral is a few KiB).
    static let maximumResponseSize = 1 << 20

    /// - Parameters:
    ///   - baseURL: e.g. `https://pccs.example:8081` (a trailing `/sgx/certification/v4` is accepted).
    ///   - client: the HTTP client to use; the caller owns and shuts it down.
    ///   - rootCACRLURL: where to get the root CA CRL when the service has no `rootcacrl` endpoint
    ///     (Intel's PCS: the root certificate's CRL distribution point).
    ///   - now: the clock that decides when cached collateral has expired.
    public init(
        baseURL: String, client: HTTPClient, rootCACRLURL: String? = nil, timeout: TimeAmount = .seconds(30),
        now: @escaping @Sendable () -> Date = Date.init
    ) {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        for suffix in ["/sgx/certification/v4", "/tdx/certification/v4"] where base.hasSuffix(suffix) {
            base.removeLast(suffix.count)
        }
        self.baseURL = base
        self.client = client
        self.rootCACRLURL = rootCACRLURL
        self.timeout = timeout
        self.now = now
    }

    /// The service `configuration` names, through `client` (see ``makeClient(for:)``); Intel's
    /// PCS gets its root CA CRL from the root certificate's distribution point.
    public init(configuration: QCNLConfiguration, client: HTTPClient) {
        self.init(
            baseURL: configuration.collateralURL, client: client,
            rootCACRLURL: configuration.isIntelPCS ? QCNLConfiguration.intelRootCACRL : nil)
    }

    /// `collateralURL` without user information or query, for logs and messages.
    public static func displayed(_ url: String) -> String {
        guard var parts = URLComponents(string: url) else { return "(an unreadable URL)" }
        parts.user = nil
        parts.password = nil
        parts.query = nil
        return parts.string ?? "(an unreadable URL)"
    }

    /// An HTTP client for `configuration`'s service: TLS 1.2 or later, the certificate checked
    /// against the system's roots unless `use_secure_cert` is false, no redirects. The caller
    /// shuts it down.
    public static func makeClient(for configuration: QCNLConfiguration) -> HTTPClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        if !configuration.useSecureCert { tls.certificateVerification = .none }
        return HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: HTTPClient.Configuration(tlsConfiguration: tls, redirectConfiguration: .disallow))
    }

    /// The collateral of one quote from `configuration`'s service, through a client made for it
    /// and shut down after (for a command that verifies one quote, not a long-running cache).
    public static func collateral(for quote: Quote, from configuration: QCNLConfiguration)
        async throws(AttestationError) -> Collateral
    {
        let client = makeClient(for: configuration)
        let result: Result<Collateral, AttestationError>
        do throws(AttestationError) {
            result = .success(
                try await PCCSCollateralProvider(configuration: configuration, client: client).collateral(for: quote))
        } catch {
            result = .failure(error)
        }
        try? await client.shutdown()
        return try result.get()
    }

    public func collateral(for quote: Quote) async throws(AttestationError) -> Collateral {
        let key = try Self.key(for: quote)
        if let cached = cache[key], now() < cached.nextUpdate { return cached }
        let task: Task<Result<Collateral, AttestationError>, Never>
        if let running = inFlight[key] {
            task = running
        } else {
            task = Task {
                do throws(AttestationError) {
                    return .success(try await self.fetch(key))
                } catch {
                    return .failure(error)
                }
            }
            inFlight[key] = task
        }
        let result = await task.value
        if inFlight[key] == task { inFlight[key] = nil }
        let fetched = try result.get()
        cache[key] = fetched
        return fetched
    }

    /// Drops cached collateral (for example after Intel announced a TCB recovery).
    public func clearCache() {
        cache.removeAll()
    }

    static func key(for quote: Quote) throws(AttestationError) -> Key {
        guard let chain = try quote.certificationData.pemChain(), chain.count >= 2 else {
            throw AttestationError(
                .certificateChain,
                "the quote carries no PCK certificate chain (certification data type \(quote.certificationData.type)), so its FMSPC is unknown"
            )
        }
        let pck = try PCKExtension(certificate: chain[0])
        let caName = chain[1].subject.description
        let ca = caName.contains("Platform") ? "platform" : "processor"
        return Key(tdx: quote.isTDX, fmspc: pck.fmspc.map { String(format: "%02X", $0) }.joined(), ca: ca)
    }

    private func fetch(_ key: Key) async throws(AttestationError) -> Collateral {
        let tee = key.tdx ? "tdx" : "sgx"
        let tcb = try await get("\(baseURL)/\(tee)/certification/v4/tcb?fmspc=\(key.fmspc)")
        let identity = try await get("\(baseURL)/\(tee)/certification/v4/qe/identity")
        let pckCRL = try await get("\(baseURL)/sgx/certification/v4/pckcrl?ca=\(key.ca)&encoding=der")
        let rootCRL = try await get(rootCACRLURL ?? "\(baseURL)/sgx/certification/v4/rootcacrl")
        let rootCRLDER = Self.hexDecodedIfText(rootCRL.body) ?? rootCRL.body
        return try Collateral(
            rootCACRL: CertificateRevocationList(derEncoded: rootCRLDER),
            pckCRL: CertificateRevocationList(derEncoded: pckCRL.body),
            pckCRLIssuerChainPEM: pckCRL.header("SGX-PCK-CRL-Issuer-Chain"),
            tcbInfo: Collateral.signedDocument(
                TCBInfo.init(jsonBytes:), from: tcb.body, member: "tcbInfo", name: "TCB Info"),
            tcbInfoIssuerChain: PEMChain.certificates(
                in: tcb.header("TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain")),
            qeIdentity: Collateral.signedDocument(
                EnclaveIdentity.init(jsonBytes:), from: identity.body, member: "enclaveIdentity", name: "QE Identity"),
            qeIdentityIssuerChain: PEMChain.certificates(in: identity.header("SGX-Enclave-Identity-Issuer-Chain")))
    }

    struct Response {
        var url: String
        var body: [UInt8]
        var headers: [(String, String)]

        func header(_ names: String...) throws(AttestationError) -> String {
            for name in names {
                if let value = headers.first(where: { $0.0.lowercased() == name.lowercased() })?.1 {
                    return value.removingPercentEncoding ?? value
                }
            }
            throw AttestationError(.malformedCollateral, "\(url) answered without the \(names[0]) header")
        }
    }

    private func get(_ url: String) async throws(AttestationError) -> Response {
        do {
            let response = try await client.execute(HTTPClientRequest(url: url), timeout: timeout)
            guard response.status == .ok else {
                // A server failing or overloaded may answer later; anything else will not change.
                let transient = response.status.code >= 500 || response.status == .tooManyRequests
                throw AttestationError(
                    transient ? .collateralUnavailable : .malformedCollateral,
                    "\(url) answered \(response.status.code) \(response.status.reasonPhrase)")
            }
            let body = try await response.body.collect(upTo: Self.maximumResponseSize)
            return Response(
                url: url, body: Array(body.readableBytesView), headers: response.headers.map { ($0.name, $0.value) })
        } catch let error as AttestationError {
            throw error
        } catch let error as NIOTooManyBytesError {
            throw AttestationError(
                .malformedCollateral, "\(url) sent more than \(Self.maximumResponseSize) bytes: \(error)")
        } catch {
            throw AttestationError(.collateralUnavailable, "cannot fetch \(url): \(error)")
        }
    }

    /// PCCS serves the root CA CRL as hex text; Intel's distribution point serves DER.
    static func hexDecodedIfText(_ body: [UInt8]) -> [UInt8]? {
        var text = body
        while let last = text.last, last == 0x0A || last == 0x0D || last == 0x20 { text.removeLast() }
        guard !text.isEmpty, text.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.count / 2)
        var index = 0
        while index < text.count {
            guard let pair = UInt8(String(decoding: text[index..<index + 2], as: UTF8.self), radix: 16) else {
                return nil
            }
            bytes.append(pair)
            index += 2
        }
        return bytes
    }
}
