import CoordinatorCore
import Hummingbird
import JSONText
import Manifest

/// The update endpoints of the client API (compat §1, §5).
extension ClientAPI {
    static let updatePaths: Set<String> = [
        "/api/v2/update", "/update", "/api/v2/update-manifest", "/update-manifest", "/api/v2/update-cancel",
        "/update-cancel",
    ]

    func addUpdateRoutes(to router: Router<ClientRequestContext>) {
        router.post("/api/v2/update") { request, context in
            let body = try await request.body.collect(upTo: maximumBodySize)
            return try await JSend.success(update(try ClientRequestBodies.manifest(Array(buffer: body)), context))
        }
        router.post("/update") { request, context in
            let body = try await request.body.collect(upTo: maximumBodySize)
            return try await JSend.success(update(Array(buffer: body), context))
        }
        for path in ["/api/v2/update-manifest", "/update-manifest"] {
            router.get(RouterPath(path)) { _, _ in try await JSend.success(pendingUpdate()) }
            router.post(RouterPath(path)) { request, context in
                let body = try await request.body.collect(upTo: maximumBodySize)
                return try await JSend.success(
                    acknowledge(try ClientRequestBodies.manifest(Array(buffer: body)), context))
            }
        }
        for path in ["/api/v2/update-cancel", "/update-cancel"] {
            router.post(RouterPath(path)) { _, context in try await JSend.success(cancelUpdate(context)) }
        }
    }

    func update(_ manifest: [UInt8], _ context: ClientRequestContext) async throws -> JSONValue {
        let user = try await user(context)
        let result = try await coordinator.update(manifest, by: user)
        logger.notice(
            "manifest update", metadata: ["user": "\(user.name)", "missing": "\(result.missingAcknowledgments)"])
        return .object([
            JSONMember("missingAcknowledgments", .integer(result.missingAcknowledgments)),
            JSONMember("missingUsers", .array(result.missingUsers.map { .string($0) })),
            JSONMember("recoverySecrets", Self.recoverySecrets(result.recoverySecrets)),
        ])
    }

    /// Recovery key name → base64 share, or null when there are none.
    static func recoverySecrets(_ secrets: [String: [UInt8]]) -> JSONValue {
        secrets.isEmpty
            ? .null : .object(secrets.sorted { $0.key < $1.key }.map { JSONMember($0.key, .bytes($0.value)) })
    }

    func pendingUpdate() async throws -> JSONValue {
        let pending = try await coordinator.pendingUpdate()
        return .object([
            JSONMember("manifest", .bytes(pending.manifest)),
            JSONMember("message", .string(Self.waitingMessage(pending.missingAcknowledgments))),
            JSONMember("missingUsers", .array(pending.missingUsers.map { .string($0) })),
        ])
    }

    func acknowledge(_ manifest: [UInt8], _ context: ClientRequestContext) async throws -> JSONValue {
        let user = try await user(context)
        let result = try await coordinator.acknowledgeUpdate(manifest, by: user)
        logger.notice(
            "manifest update acknowledged",
            metadata: ["user": "\(user.name)", "missing": "\(result.missingAcknowledgments)"])
        let message =
            result.missingAcknowledgments == 0
            ? "All users have acknowledged the update manifest. Update successfully applied"
            : Self.waitingMessage(result.missingAcknowledgments)
                + ". The following users have not yet accepted: \(result.missingUsers.joined(separator: ", "))"
        return .object([
            JSONMember("message", .string(message)),
            JSONMember("missingUsers", .array(result.missingUsers.map { .string($0) })),
            JSONMember("missingAcknowledgments", .integer(result.missingAcknowledgments)),
            JSONMember("recoverySecrets", Self.recoverySecrets(result.recoverySecrets)),
        ])
    }

    func cancelUpdate(_ context: ClientRequestContext) async throws -> JSONValue {
        let user = try await user(context)
        try await coordinator.cancelUpdate(by: user)
        logger.notice("manifest update cancelled", metadata: ["user": "\(user.name)"])
        return .object([JSONMember("message", .string("Update successfully cancelled"))])
    }

    static func waitingMessage(_ missing: Int) -> String {
        missing == 1
            ? "1 user still needs to acknowledge the update manifest"
            : "\(missing) users still need to acknowledge the update manifest"
    }
}
