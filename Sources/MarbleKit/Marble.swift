import Attestation
import Crypto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import MeshAPI
import NIOSSL
import SwiftASN1
import X509

/// What an activated marble receives: its UUID and the manifest's rendered parameters
/// (compat §2), including the certificate and key in `MARBLE_PREDEFINED_*`.
public struct MarbleParameters: Sendable {
    public var uuid: UUID
    public var files: [String: [UInt8]]
    public var env: [String: [UInt8]]
    public var argv: [String]

    /// Ready NIOSSL server and client configurations from the issued certificate (mTLS to
    /// peers, trust = the cluster's marble root).
    public func tls() throws(MarbleError) -> MarbleTLS { try MarbleTLS(parameters: self) }
}

/// The marble side of activation: a fresh TLS key and self-signed certificate, a quote binding
/// that certificate, and `rpc.Marble/Activate` over mutual TLS to a Coordinator whose
/// certificate must chain to the configured root.
public enum Marble {
    /// Activates once. The UUID is read from the UUID file, or made and written there (0600)
    /// after the Coordinator accepted it, so a restarted marble keeps its identity. Without a
    /// pinned root, the Coordinator's quote is checked with `coordinatorEvidence` against the
    /// configuration's era config first.
    public static func activate(
        _ configuration: MarbleConfiguration, quoteIssuer: any QuoteIssuer,
        coordinatorEvidence: CoordinatorEvidence? = nil
    ) async throws(MarbleError) -> MarbleParameters {
        let root = try await trustedRoot(configuration, evidence: coordinatorEvidence)
        let stored = try storedUUID(configuration.uuidFile)
        let uuid = stored ?? UUID()
        let identity = try Identity(dnsNames: configuration.dnsNames)
        let quote: [UInt8]
        do {
            quote = try quoteIssuer.issueQuote(reportData: Array(SHA256.hash(data: identity.certificate)))
        } catch {
            throw MarbleError(.attestation, "the marble's quote could not be made: \(error.message)")
        }
        var request = Rpc_ActivationReq()
        request.quote = Data(quote)
        request.csr = Data(identity.csr)
        request.marbleType = configuration.marbleType
        request.uuid = uuid.uuidString
        let response = try await send(request, identity: identity, root: root, configuration: configuration)
        // A UUID the marble was given (Kubernetes: the pod's UID, read-only) stays as it is.
        if stored == nil { try storeUUID(uuid, in: configuration.uuidFile) }
        let parameters = response.parameters
        return MarbleParameters(
            uuid: uuid, files: parameters.files.mapValues(Array.init), env: parameters.env.mapValues(Array.init),
            argv: parameters.argv)
    }

    /// Activates, retrying while the Coordinator is unreachable: `report` gets a line per failed
    /// attempt; after `timeout` the last error is thrown. A refusal is thrown at once.
    public static func activate(
        _ configuration: MarbleConfiguration, quoteIssuer: any QuoteIssuer,
        coordinatorEvidence: CoordinatorEvidence? = nil,
        timeout: Duration, report: @Sendable (String) -> Void = { _ in }
    ) async throws(MarbleError) -> MarbleParameters {
        let deadline = ContinuousClock.now + timeout
        var delay = Duration.milliseconds(200)
        var attempt = 1
        while true {
            do {
                return try await activate(
                    configuration, quoteIssuer: quoteIssuer, coordinatorEvidence: coordinatorEvidence)
            } catch
                where (error.code == .unreachable || error.code == .retry) && ContinuousClock.now + delay < deadline
            {
                report("activation attempt \(attempt) failed: \(error.message); retrying in \(delay)")
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
                attempt += 1
            }
        }
    }

    /// The root to trust: the pinned one, or the one the Coordinator's verified quote binds.
    static func trustedRoot(_ configuration: MarbleConfiguration, evidence: CoordinatorEvidence?)
        async throws(MarbleError) -> String
    {
        if let root = configuration.coordinatorRoot { return root }
        guard let era = configuration.eraConfig else {
            throw MarbleError(
                .configuration, "no Coordinator root and no era config: nothing to trust the Coordinator by")
        }
        guard let evidence else {
            throw MarbleError(
                .configuration,
                "checking the Coordinator's quote needs its collateral: a simulated platform, a collateral file or a PCCS"
            )
        }
        return try await CoordinatorAttestation.root(
            clientAddress: configuration.coordinatorClientAddress, era: era, evidence: evidence)
    }

    static func send(
        _ request: Rpc_ActivationReq, identity: Identity, root: String, configuration: MarbleConfiguration
    ) async throws(MarbleError) -> Rpc_ActivationResp {
        guard let separator = configuration.coordinatorAddress.lastIndex(of: ":"),
            let port = Int(
                configuration.coordinatorAddress[configuration.coordinatorAddress.index(after: separator)...])
        else {
            throw MarbleError(
                .configuration, "the Coordinator address \(configuration.coordinatorAddress) is not HOST:PORT")
        }
        let host = String(configuration.coordinatorAddress[..<separator])
        let pinned = (try? NIOSSLCertificate.fromPEMBytes(Array(root.utf8)))?.first.flatMap { try? $0.toDERBytes() }
        do {
            // An IP literal is dialled as such: TLS then sends no SNI (an IP is not allowed there).
            let target: any ResolvableTarget =
                IPv4Address(host) != nil ? .ipv4(address: host, port: port) : .dns(host: host, port: port)
            let transport = try HTTP2ClientTransport.Posix(
                target: target,
                transportSecurity: .mTLS(
                    certificateChain: [.bytes(identity.certificate, format: .der)],
                    privateKey: .bytes(Array(identity.key.derRepresentation), format: .der)
                ) { config in
                    config.trustRoots = .certificates([.bytes(Array(root.utf8), format: .pem)])
                    // The pinned root is the Coordinator's own TLS certificate (the mesh API serves
                    // it as a self-signed leaf). Trust is that exact certificate, whose key the
                    // handshake proves, not a name: a hostname check adds nothing (127.0.0.1, a
                    // Service name), and a chain check alone would also accept a certificate the
                    // root's key signed, such as the intermediate that signs marbles.
                    config.serverCertificateVerification = .noHostnameVerification
                    config.customVerificationCallback = { certificates, promise in
                        let presented = certificates.first.flatMap { try? $0.toDERBytes() }
                        if let presented, let pinned, presented == pinned {
                            promise.succeed(
                                .certificateVerified(VerificationMetadata(ValidatedCertificateChain(certificates))))
                        } else {
                            promise.succeed(.failed)
                        }
                    }
                })
            return try await withGRPCClient(transport: transport) { client in
                // A Coordinator that accepted the connection but never answers must not hang the marble.
                var options = CallOptions.defaults
                options.timeout = .seconds(30)
                return try await Rpc_Marble.Client(wrapping: client).activate(request, options: options)
            }
        } catch let error as RPCError {
            if let tls = tlsFailure(error) {
                throw MarbleError(
                    .untrusted,
                    "the server at \(configuration.coordinatorAddress) is not the Coordinator this marble trusts: its certificate does not chain to the configured root (it is not the pinned Coordinator root). Check that EDG_MARBLE_COORDINATOR_ADDR is this Coordinator's mesh address and that the pinned root is its current one (marblerun certificate root). \(tls)"
                )
            }
            if error.code == .unavailable || error.code == .deadlineExceeded {
                // The cause says whether nothing answered or the answer was not our Coordinator (TLS).
                throw MarbleError(
                    .unreachable,
                    "the Coordinator at \(configuration.coordinatorAddress) is unreachable or not trusted: \(error)")
            }
            if error.code == .aborted {
                throw MarbleError(.retry, "the Coordinator asked to retry the activation: \(error.message)")
            }
            throw MarbleError(.refused, "the Coordinator refused the activation (\(error.code)): \(error.message)")
        } catch {
            throw MarbleError(
                .unreachable, "the Coordinator at \(configuration.coordinatorAddress) is unreachable: \(error)")
        }
    }

    /// The TLS failure somewhere in `error`'s causes (a certificate that did not verify), if any.
    static func tlsFailure(_ error: any Error) -> (any Error)? {
        var current: (any Error)? = error
        for _ in 0..<8 {
            switch current {
            case let tls as NIOSSLError: return tls
            case let tls as BoringSSLError: return tls
            case let tls as NIOSSLExtraError: return tls
            case let rpc as RPCError: current = rpc.cause
            case let transport as RPCErrorConvertible: current = transport.rpcErrorCause
            default: return nil
            }
        }
        return nil
    }

    static func storedUUID(_ file: URL) throws(MarbleError) -> UUID? {
        guard let data = FileManager.default.contents(atPath: file.path) else { return nil }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let uuid = UUID(uuidString: text) else {
            throw MarbleError(.configuration, "\(file.path) does not hold a UUID; remove it to start as a new marble")
        }
        return uuid
    }

    static func storeUUID(_ uuid: UUID, in file: URL) throws(MarbleError) {
        let manager = FileManager.default
        try? manager.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        guard
            manager.createFile(
                atPath: file.path, contents: Data(uuid.uuidString.lowercased().utf8),
                attributes: [.posixPermissions: 0o600])
        else { throw MarbleError(.configuration, "cannot write the UUID file \(file.path)") }
    }

    /// The marble's TLS key, self-signed certificate (DER) and CSR (DER) naming `dnsNames`.
    struct Identity {
        let key = P256.Signing.PrivateKey()
        let certificate: [UInt8]
        let csr: [UInt8]

        init(dnsNames: [String]) throws(MarbleError) {
            do {
                let name = try DistinguishedName { CommonName("marble") }
                let names = SubjectAlternativeNames(
                    dnsNames.map { name in
                        if let address = IPv4Address(name) {
                            return .ipAddress(ASN1OctetString(contentBytes: address[...]))
                        }
                        return .dnsName(name)
                    })
                let certificate = try Certificate(
                    version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
                    notValidBefore: Date() - 60, notValidAfter: Date() + 3600, issuer: name, subject: name,
                    signatureAlgorithm: .ecdsaWithSHA256, extensions: Certificate.Extensions {},
                    issuerPrivateKey: .init(key))
                self.certificate = try certificate.serializeAsPEM().derBytes
                let request = try CertificateSigningRequest(
                    version: .v1, subject: name, privateKey: .init(key),
                    attributes: try CertificateSigningRequest.Attributes([
                        .init(ExtensionRequest(extensions: Certificate.Extensions { names }))
                    ]),
                    signatureAlgorithm: .ecdsaWithSHA256)
                var serializer = DER.Serializer()
                try serializer.serialize(request)
                csr = serializer.serializedBytes
            } catch {
                throw MarbleError(.configuration, "cannot make the marble's certificate: \(error)")
            }
        }
    }
}

/// A dotted-quad IPv4 address as its 4 bytes; nil for anything else (then it is a DNS name).
func IPv4Address(_ text: String) -> [UInt8]? {
    let parts = text.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 4 else { return nil }
    let bytes = parts.compactMap { part in part.count <= 3 && part.allSatisfy(\.isASCII) ? UInt8(part) : nil }
    return bytes.count == 4 ? bytes : nil
}
