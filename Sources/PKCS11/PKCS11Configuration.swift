import Foundation
import JSONText

/// MarbleRun's `--pkcs11-config` file (crypto11's JSON): the module, one way to find the token,
/// and the PIN. `{"Path": "/usr/lib/softhsm/libsofthsm2.so", "TokenLabel": "marblerun", "Pin": "1234"}`
public struct PKCS11Configuration: Sendable, Equatable {
    /// How the token is found: exactly one of these is given.
    public enum Token: Sendable, Equatable, CustomStringConvertible {
        case label(String)
        case serial(String)
        case slot(UInt)

        public var description: String {
            switch self {
            case .label(let label): return "TokenLabel \"\(label)\""
            case .serial(let serial): return "TokenSerial \"\(serial)\""
            case .slot(let slot): return "SlotNumber \(slot)"
            }
        }
    }

    /// The PKCS #11 module (shared library) to load.
    public var path: String
    public var token: Token
    public var pin: String

    public init(path: String, token: Token, pin: String) {
        self.path = path
        self.token = token
        self.pin = pin
    }

    /// The largest configuration file read.
    static let maximumSize = 64 << 10

    /// Reads and checks the file at `path`.
    public static func read(_ path: String) throws(PKCS11Error) -> PKCS11Configuration {
        guard let data = FileManager.default.contents(atPath: path), data.count <= maximumSize else {
            throw PKCS11Error(.configuration, "cannot read the PKCS #11 configuration \(path)")
        }
        return try parse(Array(data), source: path)
    }

    /// Parses the JSON; `source` names it in errors. Keys crypto11 knows but that do not apply
    /// here (MaxSessions, UserType, PoolWaitTimeout, UseGCMIVFromHSM) are accepted and ignored.
    public static func parse(_ bytes: [UInt8], source: String) throws(PKCS11Error) -> PKCS11Configuration {
        guard case .object(let members)? = try? JSONParser().parse(bytes) else {
            throw PKCS11Error(.configuration, "\(source) is not a JSON object")
        }
        func string(_ name: String) throws(PKCS11Error) -> String? {
            guard let value = members.first(where: { $0.key == name })?.value, value != .null else { return nil }
            guard case .string(let text) = value else {
                throw PKCS11Error(.configuration, "\(source): \(name) must be a string")
            }
            return text
        }
        guard let modulePath = try string("Path"), !modulePath.isEmpty else {
            throw PKCS11Error(.configuration, "\(source) names no PKCS #11 module (\"Path\")")
        }
        var tokens: [Token] = []
        if let label = try string("TokenLabel") { tokens.append(.label(label)) }
        if let serial = try string("TokenSerial") { tokens.append(.serial(serial)) }
        if let slot = members.first(where: { $0.key == "SlotNumber" })?.value, slot != .null {
            guard let number = slot.intValue, number >= 0 else {
                throw PKCS11Error(.configuration, "\(source): SlotNumber must be a number of 0 or more")
            }
            tokens.append(.slot(UInt(number)))
        }
        guard tokens.count == 1, let token = tokens.first else {
            throw PKCS11Error(
                .configuration, "\(source) must name the token exactly one way: TokenLabel, TokenSerial or SlotNumber")
        }
        return PKCS11Configuration(path: modulePath, token: token, pin: try string("Pin") ?? "")
    }
}
