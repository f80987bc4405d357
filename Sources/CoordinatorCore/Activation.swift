import Foundation

/// What a marble sends to activate (`rpc.ActivationReq`): its quote, a CSR naming the SANs it
/// wants, its marble type and UUID. The Coordinator's answer carries the marble's key.
public struct ActivationRequest: Sendable {
    public var quote: [UInt8]
    /// DER certificate signing request; only its SANs and signature are used.
    public var csr: [UInt8]
    public var marbleType: String
    public var uuid: String

    public init(quote: [UInt8], csr: [UInt8], marbleType: String, uuid: String) {
        self.quote = quote
        self.csr = csr
        self.marbleType = marbleType
        self.uuid = uuid
    }
}

/// The marble's parameters (`rpc.Parameters`): files, environment and argv, rendered.
public struct ActivationParameters: Sendable, Hashable {
    public var files: [String: [UInt8]]
    public var env: [String: [UInt8]]
    public var argv: [String]

    public init(files: [String: [UInt8]] = [:], env: [String: [UInt8]] = [:], argv: [String] = []) {
        self.files = files
        self.env = env
        self.argv = argv
    }
}

/// Environment variables every activated marble receives (compat §2).
public enum PredefinedEnvironment {
    public static let rootCA = "MARBLE_PREDEFINED_ROOT_CA"
    public static let certificateChain = "MARBLE_PREDEFINED_MARBLE_CERTIFICATE_CHAIN"
    public static let privateKey = "MARBLE_PREDEFINED_PRIVATE_KEY"
    public static let coordinatorRootCA = "MARBLE_PREDEFINED_COORDINATOR_ROOT_CA"
    public static let ttlsConfig = "MARBLE_TTLS_CONFIG"
}
