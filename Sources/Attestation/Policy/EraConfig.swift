import Foundation
import JSONText

/// The identity a Coordinator's quote must show before a client (the CLI, a marble) trusts it: MarbleRun's
/// era-config, `{"coordinator": {UniqueID | SignerID+ProductID+SecurityVersion, Debug,
/// AcceptedTCBStatuses, AcceptedAdvisories}}` (the inner object alone is accepted too).
public struct EraConfig: Sendable {
    public var policy: PackagePolicy

    public init(policy: PackagePolicy) { self.policy = policy }

    /// Reads an era config file (at most 1 MiB).
    public static func read(_ path: String) throws(AttestationError) -> EraConfig {
        try parse(contents(path), name: path)
    }

    /// The text of an era config file, once it parses as one: for handing it on unchanged (the
    /// chart's ConfigMap, the marble-injector's pod annotation).
    public static func document(at path: String) throws(AttestationError) -> String {
        let bytes = try contents(path)
        _ = try parse(bytes, name: path)
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func contents(_ path: String) throws(AttestationError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path), data.count <= 1 << 20 else {
            throw AttestationError(.policy, "cannot read the era config \(path) (at most 1 MiB)")
        }
        return Array(data)
    }

    /// Parses era config JSON; `name` says where it came from in errors.
    public static func parse(_ bytes: [UInt8], name: String) throws(AttestationError) -> EraConfig {
        guard case .object(var members)? = try? JSONParser(maximumDepth: 8).parse(bytes) else {
            throw AttestationError(.policy, "\(name) is not a JSON object")
        }
        if let inner = members.first(where: { $0.key.lowercased() == "coordinator" }),
            case .object(let object) = inner.value
        {
            members = object
        }
        var policy = PackagePolicy()
        for member in members {
            let field = member.key
            switch (field.lowercased(), member.value) {
            case ("uniqueid", .string(let text)):
                guard let bytes = Hex.decode(text), bytes.count == 32 else {
                    throw AttestationError(.policy, "\(name): UniqueID must be 64 hex digits")
                }
                policy.uniqueID = bytes
            case ("signerid", .string(let text)):
                guard let bytes = Hex.decode(text), bytes.count == 32 else {
                    throw AttestationError(.policy, "\(name): SignerID must be 64 hex digits")
                }
                policy.signerID = bytes
            case ("productid", .number(let text)):
                guard let value = UInt16(text) else {
                    throw AttestationError(.policy, "\(name): ProductID must be 0…65535")
                }
                policy.productID = value
            case ("securityversion", .number(let text)):
                guard let value = UInt16(text) else {
                    throw AttestationError(.policy, "\(name): SecurityVersion must be 0…65535")
                }
                policy.securityVersion = value
            case ("debug", .bool(let value)):
                policy.debug = value
            case ("acceptedtcbstatuses", .array(let values)):
                policy.acceptedTCBStatuses = try values.map { value throws(AttestationError) in
                    guard case .string(let text) = value else {
                        throw AttestationError(.policy, "\(name): AcceptedTCBStatuses holds names")
                    }
                    return TCBStatus(rawValue: text)
                }
            case ("acceptedadvisories", .array(let values)):
                policy.acceptedAdvisories = try values.map { value throws(AttestationError) in
                    guard case .string(let text) = value else {
                        throw AttestationError(.policy, "\(name): AcceptedAdvisories holds advisory IDs")
                    }
                    return text
                }
            case (_, .null):
                continue
            default:
                throw AttestationError(.policy, "\(name): unknown or mistyped field \(field.prefix(40))")
            }
        }
        guard
            policy.uniqueID != nil
                || (policy.signerID != nil && policy.productID != nil && policy.securityVersion != nil)
        else {
            throw AttestationError(.policy, "\(name) needs UniqueID, or SignerID with ProductID and SecurityVersion")
        }
        return EraConfig(policy: policy)
    }
}
