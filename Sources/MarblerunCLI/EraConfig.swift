import Attestation
import Foundation
import JSONText

/// The identity a Coordinator's quote must show before the CLI trusts it: MarbleRun's
/// era-config, `{"coordinator": {UniqueID | SignerID+ProductID+SecurityVersion, Debug,
/// AcceptedTCBStatuses, AcceptedAdvisories}}` (the inner object alone is accepted too).
struct EraConfig: Sendable {
    var policy: PackagePolicy

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func read(_ path: String) throws(Failure) -> EraConfig {
        guard let data = FileManager.default.contents(atPath: path), data.count <= 1 << 20 else {
            throw Failure(description: "cannot read the era config \(path)")
        }
        return try parse(Array(data), name: path)
    }

    static func parse(_ bytes: [UInt8], name: String) throws(Failure) -> EraConfig {
        guard case .object(var members)? = try? JSONParser(maximumDepth: 8).parse(bytes) else {
            throw Failure(description: "\(name) is not a JSON object")
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
                    throw Failure(description: "\(name): UniqueID must be 64 hex digits")
                }
                policy.uniqueID = bytes
            case ("signerid", .string(let text)):
                guard let bytes = Hex.decode(text), bytes.count == 32 else {
                    throw Failure(description: "\(name): SignerID must be 64 hex digits")
                }
                policy.signerID = bytes
            case ("productid", .number(let text)):
                guard let value = UInt16(text) else { throw Failure(description: "\(name): ProductID must be 0…65535") }
                policy.productID = value
            case ("securityversion", .number(let text)):
                guard let value = UInt16(text) else {
                    throw Failure(description: "\(name): SecurityVersion must be 0…65535")
                }
                policy.securityVersion = value
            case ("debug", .bool(let value)):
                policy.debug = value
            case ("acceptedtcbstatuses", .array(let values)):
                policy.acceptedTCBStatuses = try values.map { value throws(Failure) in
                    guard case .string(let text) = value else {
                        throw Failure(description: "\(name): AcceptedTCBStatuses holds names")
                    }
                    return TCBStatus(rawValue: text)
                }
            case ("acceptedadvisories", .array(let values)):
                policy.acceptedAdvisories = try values.map { value throws(Failure) in
                    guard case .string(let text) = value else {
                        throw Failure(description: "\(name): AcceptedAdvisories holds advisory IDs")
                    }
                    return text
                }
            case (_, .null):
                continue
            default:
                throw Failure(description: "\(name): unknown or mistyped field \(field.prefix(40))")
            }
        }
        guard
            policy.uniqueID != nil
                || (policy.signerID != nil && policy.productID != nil && policy.securityVersion != nil)
        else {
            throw Failure(description: "\(name) needs UniqueID, or SignerID with ProductID and SecurityVersion")
        }
        return EraConfig(policy: policy)
    }
}
