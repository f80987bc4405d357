import Foundation

/// Where a marble activates and as what: MarbleRun's `EDG_MARBLE_*` environment (compat §2),
/// plus the Coordinator root the marble trusts (MarbleRun's premain trusts any; this one does not).
public struct MarbleConfiguration: Sendable {
    /// The manifest's marble type (`EDG_MARBLE_TYPE`, required).
    public var marbleType: String
    /// The Coordinator's mesh API, HOST:PORT (`EDG_MARBLE_COORDINATOR_ADDR`, default localhost:2001).
    public var coordinatorAddress: String
    /// Where the marble's UUID is kept across restarts (`EDG_MARBLE_UUID_FILE`, default ./uuid).
    public var uuidFile: URL
    /// Names for the marble's certificate (`EDG_MARBLE_DNS_NAMES`, comma-separated, default localhost).
    public var dnsNames: [String]
    /// PEM of the Coordinator root certificate to trust (`EDG_MARBLE_COORDINATOR_ROOT_CA`: a path).
    public var coordinatorRoot: String

    public init(
        marbleType: String, coordinatorAddress: String = "localhost:2001", uuidFile: URL = URL(fileURLWithPath: "uuid"),
        dnsNames: [String] = ["localhost"], coordinatorRoot: String
    ) {
        self.marbleType = marbleType
        self.coordinatorAddress = coordinatorAddress
        self.uuidFile = uuidFile
        self.dnsNames = dnsNames
        self.coordinatorRoot = coordinatorRoot
    }

    /// The configuration from MarbleRun's environment names.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(MarbleError) -> MarbleConfiguration
    {
        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        guard let type = value("EDG_MARBLE_TYPE") else {
            throw MarbleError(.configuration, "EDG_MARBLE_TYPE is not set: name the manifest's marble type")
        }
        guard let rootPath = value("EDG_MARBLE_COORDINATOR_ROOT_CA") else {
            throw MarbleError(
                .configuration,
                "EDG_MARBLE_COORDINATOR_ROOT_CA is not set: give the path of the Coordinator root certificate (PEM), e.g. from `marblerun certificate root`"
            )
        }
        guard let data = FileManager.default.contents(atPath: rootPath) else {
            throw MarbleError(.configuration, "cannot read the Coordinator root certificate \(rootPath)")
        }
        return MarbleConfiguration(
            marbleType: type, coordinatorAddress: value("EDG_MARBLE_COORDINATOR_ADDR") ?? "localhost:2001",
            uuidFile: URL(fileURLWithPath: value("EDG_MARBLE_UUID_FILE") ?? "uuid"),
            dnsNames: (value("EDG_MARBLE_DNS_NAMES") ?? "localhost").split(separator: ",").map {
                $0.trimmingCharacters(in: .whitespaces)
            },
            coordinatorRoot: String(decoding: data, as: UTF8.self))
    }
}

/// Why a marble could not activate: a code to act on and a sentence.
public struct MarbleError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: RawRepresentable, Sendable, Hashable {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        /// The marble's own settings are wrong.
        public static let configuration = Self(rawValue: "configuration")
        /// The Coordinator could not be reached (retrying may help).
        public static let unreachable = Self(rawValue: "unreachable")
        /// The server's certificate does not chain to the trusted Coordinator root (retrying will not help).
        public static let untrusted = Self(rawValue: "untrusted")
        /// The Coordinator refused the activation (retrying will not help).
        public static let refused = Self(rawValue: "refused")
        /// The quote could not be made.
        public static let attestation = Self(rawValue: "attestation")
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
