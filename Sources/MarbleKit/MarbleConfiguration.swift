import Attestation
import Foundation

/// Where a marble activates and as what: MarbleRun's `EDG_MARBLE_*` environment (compat §2),
/// plus how the marble trusts the Coordinator (MarbleRun's premain trusts any; this one does not):
/// a pinned root, or the Coordinator's quote checked against an era config.
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
    /// When given, it is the only trust anchor.
    public var coordinatorRoot: String?
    /// The Coordinator identity to check its quote against when no root is pinned
    /// (`EDG_MARBLE_COORDINATOR_ERA_CONFIG`: a path, MarbleRun's era-config format).
    public var eraConfig: EraConfig?
    /// The Coordinator's client API, HOST:PORT, where its quote is fetched
    /// (`EDG_MARBLE_COORDINATOR_CLIENT_ADDR`, default: the mesh address's host, port 4433).
    public var coordinatorClientAddress: String

    public init(
        marbleType: String, coordinatorAddress: String = "localhost:2001", uuidFile: URL = URL(fileURLWithPath: "uuid"),
        dnsNames: [String] = ["localhost"], coordinatorRoot: String? = nil, eraConfig: EraConfig? = nil,
        coordinatorClientAddress: String? = nil
    ) {
        self.marbleType = marbleType
        self.coordinatorAddress = coordinatorAddress
        self.uuidFile = uuidFile
        self.dnsNames = dnsNames
        self.coordinatorRoot = coordinatorRoot
        self.eraConfig = eraConfig
        let host = coordinatorAddress.lastIndex(of: ":").map { String(coordinatorAddress[..<$0]) } ?? "localhost"
        self.coordinatorClientAddress = coordinatorClientAddress ?? "\(host):4433"
    }

    /// The configuration from MarbleRun's environment names.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(MarbleError) -> MarbleConfiguration
    {
        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        guard let type = value("EDG_MARBLE_TYPE") else {
            throw MarbleError(.configuration, "EDG_MARBLE_TYPE is not set: name the manifest's marble type")
        }
        var root: String?
        if let rootPath = value("EDG_MARBLE_COORDINATOR_ROOT_CA") {
            guard let data = FileManager.default.contents(atPath: rootPath) else {
                throw MarbleError(.configuration, "cannot read the Coordinator root certificate \(rootPath)")
            }
            root = String(decoding: data, as: UTF8.self)
        }
        var era: EraConfig?
        if let eraPath = value("EDG_MARBLE_COORDINATOR_ERA_CONFIG") {
            do {
                era = try EraConfig.read(eraPath)
            } catch {
                throw MarbleError(.configuration, error.message)
            }
        }
        guard root != nil || era != nil else {
            throw MarbleError(
                .configuration,
                "say which Coordinator to trust: EDG_MARBLE_COORDINATOR_ROOT_CA (path of its root certificate, PEM, e.g. from `marblerun certificate root`) or EDG_MARBLE_COORDINATOR_ERA_CONFIG (path of an era config its quote must match)"
            )
        }
        return MarbleConfiguration(
            marbleType: type, coordinatorAddress: value("EDG_MARBLE_COORDINATOR_ADDR") ?? "localhost:2001",
            uuidFile: URL(fileURLWithPath: value("EDG_MARBLE_UUID_FILE") ?? "uuid"),
            dnsNames: (value("EDG_MARBLE_DNS_NAMES") ?? "localhost").split(separator: ",").map {
                $0.trimmingCharacters(in: .whitespaces)
            },
            coordinatorRoot: root, eraConfig: era, coordinatorClientAddress: value("EDG_MARBLE_COORDINATOR_CLIENT_ADDR")
        )
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
        /// The Coordinator's state changed during the activation (an update): retrying is expected to help.
        public static let retry = Self(rawValue: "retry")
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
