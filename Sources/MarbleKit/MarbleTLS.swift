import Foundation
import NIOSSL

/// TLS for a Swift service that runs as a marble: its Coordinator-issued certificate chain and
/// key, and the cluster root that every peer's certificate must chain to. Servers built from it
/// require a client certificate from the same cluster; clients present theirs and accept only
/// servers of the cluster.
public struct MarbleTLS: Sendable {
    /// The certificate chain this marble presents, leaf first.
    public var certificateChain: [NIOSSLCertificate]
    /// The key of the leaf certificate.
    public var privateKey: NIOSSLPrivateKey
    /// The trust anchors for peers: the cluster's marble root (`MARBLE_PREDEFINED_ROOT_CA`).
    public var trustRoots: [NIOSSLCertificate]

    /// From PEM text: a chain (leaf first), its key, and the root(s) to trust.
    public init(certificateChainPEM: String, privateKeyPEM: String, trustRootsPEM: String) throws(MarbleError) {
        do {
            certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(certificateChainPEM.utf8))
            privateKey = try NIOSSLPrivateKey(bytes: Array(privateKeyPEM.utf8), format: .pem)
            trustRoots = try NIOSSLCertificate.fromPEMBytes(Array(trustRootsPEM.utf8))
        } catch {
            throw MarbleError(.configuration, "the marble's TLS certificate, key or root is not valid PEM: \(error)")
        }
        guard !certificateChain.isEmpty, !trustRoots.isEmpty else {
            throw MarbleError(.configuration, "the marble's TLS certificate chain and trust roots must not be empty")
        }
    }

    /// From the variables every activated marble gets (compat §2): `MARBLE_PREDEFINED_MARBLE_CERTIFICATE_CHAIN`,
    /// `MARBLE_PREDEFINED_PRIVATE_KEY` and `MARBLE_PREDEFINED_ROOT_CA`, as set by `marble run`
    /// or by ``init(parameters:)``.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) throws(MarbleError) {
        func value(_ name: String) throws(MarbleError) -> String {
            guard let value = environment[name], !value.isEmpty else {
                throw MarbleError(
                    .configuration, "\(name) is not set: start this program as a marble (marble run -- PROGRAM)")
            }
            return value
        }
        try self.init(
            certificateChainPEM: try value(Self.chainVariable), privateKeyPEM: try value(Self.keyVariable),
            trustRootsPEM: try value(Self.rootVariable))
    }

    /// From the parameters ``Marble/activate(_:quoteIssuer:)`` returned.
    public init(parameters: MarbleParameters) throws(MarbleError) {
        try self.init(environment: parameters.env.mapValues { String(decoding: $0, as: UTF8.self) })
    }

    static let chainVariable = "MARBLE_PREDEFINED_MARBLE_CERTIFICATE_CHAIN"
    static let keyVariable = "MARBLE_PREDEFINED_PRIVATE_KEY"
    static let rootVariable = "MARBLE_PREDEFINED_ROOT_CA"

    /// A server configuration: TLS 1.2+, this marble's chain, and a client certificate that
    /// chains to the cluster root required (set `requireClientCertificate` to false for a
    /// public endpoint such as a web front end).
    public func serverConfiguration(requireClientCertificate: Bool = true) -> TLSConfiguration {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: certificateChain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
        configuration.minimumTLSVersion = .tlsv12
        if requireClientCertificate {
            configuration.certificateVerification = .noHostnameVerification
            configuration.trustRoots = .certificates(trustRoots)
        }
        return configuration
    }

    /// A client configuration: TLS 1.2+, this marble's chain as client certificate, and only
    /// servers whose certificate chains to the cluster root and names the host are accepted.
    public func clientConfiguration() -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = .fullVerification
        configuration.trustRoots = .certificates(trustRoots)
        configuration.certificateChain = certificateChain.map { .certificate($0) }
        configuration.privateKey = .privateKey(privateKey)
        return configuration
    }
}
