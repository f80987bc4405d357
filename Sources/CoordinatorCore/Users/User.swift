import Manifest
import SwiftASN1

/// What a role lets a user do (compat §4), on a named package or secret, or on the manifest.
public enum UserAction: String, Sendable, Hashable, CaseIterable {
    case updateSecurityVersion = "UpdateSecurityVersion"
    case readSecret = "ReadSecret"
    case writeSecret = "WriteSecret"
    case updateManifest = "UpdateManifest"

    /// The resource type of roles that may hold the action.
    var resourceType: String {
        switch self {
        case .updateSecurityVersion: return "Packages"
        case .readSecret, .writeSecret: return "Secrets"
        case .updateManifest: return "Manifest"
        }
    }
}

/// A manifest user, authenticated by presenting a client certificate byte-equal to the one the
/// manifest gives for it.
public struct User: Sendable, Hashable {
    public let name: String
    /// The certificate's DER bytes.
    let certificate: [UInt8]
    private let grants: Set<Grant>

    private struct Grant: Hashable {
        var action: UserAction
        /// nil for the manifest (UpdateManifest takes no resource names).
        var resource: String?
    }

    /// Whether the user's roles allow `action` on `resource` (nil: the manifest).
    public func isGranted(_ action: UserAction, on resource: String? = nil) -> Bool {
        grants.contains(Grant(action: action, resource: action == .updateManifest ? nil : resource))
    }

    /// The manifest's users with the grants of their roles. Role and action names are matched
    /// without regard to case, as MarbleRun does; the validator has refused unknown ones.
    static func all(in manifest: Manifest) -> [User] {
        manifest.users.sorted { $0.key < $1.key }.compactMap { name, user in
            guard let document = try? PEMDocument(pemString: user.certificate) else { return nil }
            var grants: Set<Grant> = []
            for roleName in user.roles {
                guard let role = manifest.roles[roleName] else { continue }
                for actionName in role.actions {
                    guard
                        let action = UserAction.allCases.first(where: {
                            $0.rawValue.lowercased() == actionName.lowercased()
                        }), action.resourceType == role.resourceType
                    else { continue }
                    if action == .updateManifest {
                        grants.insert(Grant(action: action, resource: nil))
                    } else {
                        for resource in role.resourceNames { grants.insert(Grant(action: action, resource: resource)) }
                    }
                }
            }
            return User(name: name, certificate: document.derBytes, grants: grants)
        }
    }
}
