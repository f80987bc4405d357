import AuditLog
import Manifest

/// Users, the secrets API and the update log (compat §1, §4).
extension Coordinator {
    /// The manifest user whose certificate is byte-equal to `certificate` (DER), the client
    /// certificate of the request.
    public func authenticate(_ certificate: [UInt8]?) throws(CoordinatorError) -> User {
        guard let manifest = manifest?.manifest else {
            throw CoordinatorError(.wrongState, "no manifest is set yet, so there are no users")
        }
        guard let certificate, !certificate.isEmpty else {
            throw CoordinatorError(
                .unauthenticated, "this call needs a manifest user's client certificate; the request presented none")
        }
        guard let user = User.all(in: manifest).first(where: { $0.certificate == certificate }) else {
            throw CoordinatorError(
                .unauthenticated, "the client certificate is not the certificate of any user in the manifest")
        }
        return user
    }

    /// The values of shared and user-defined secrets, for a user allowed to read each of them.
    /// Per-marble secrets exist only inside marbles and cannot be read.
    public func secrets(_ names: [String], for user: User) throws(CoordinatorError) -> [String: SecretValue] {
        let manifest = try acceptingMarblesManifest()
        guard !names.isEmpty else { throw CoordinatorError(.invalidRequest, "name at least one secret (?s=NAME)") }
        var values: [String: SecretValue] = [:]
        for name in names {
            // Permission first, so that a user learns nothing about secrets it may not read.
            guard user.isGranted(.readSecret, on: name) else {
                throw CoordinatorError(.forbidden, "user \(user.name) may not read secret \(name.prefix(64))")
            }
            guard let definition = manifest.secrets[name] else {
                throw CoordinatorError(.notFound, "the manifest has no secret \"\(name.prefix(64))\"")
            }
            if definition.userDefined {
                guard let value = core.userDefinedSecrets[name] else {
                    throw CoordinatorError(.notFound, "secret \(name) is user-defined and has not been set yet")
                }
                values[name] = value
            } else if definition.shared, let value = sharedSecrets[name] {
                values[name] = value
            } else {
                throw CoordinatorError(
                    .forbidden, "secret \(name) is made for each marble and exists only inside marbles")
            }
        }
        return values
    }

    /// Sets user-defined secrets, all or none, for a user allowed to write each of them; the
    /// change and its update log entry are one durable commit. Marbles activated afterwards see
    /// the new values.
    public func setSecrets(_ secrets: [String: UserSecret], by user: User) async throws(CoordinatorError) {
        try await synchronize()
        let epoch = stateEpoch
        let manifest = try acceptingMarblesManifest()
        guard !secrets.isEmpty else { throw CoordinatorError(.invalidRequest, "the request sets no secrets") }
        var values = core.userDefinedSecrets
        for (name, secret) in secrets.sorted(by: { $0.key < $1.key }) {
            guard user.isGranted(.writeSecret, on: name) else {
                throw CoordinatorError(.forbidden, "user \(user.name) may not write secret \(name.prefix(64))")
            }
            guard let definition = manifest.secrets[name] else {
                throw CoordinatorError(.notFound, "the manifest has no secret \"\(name.prefix(64))\"")
            }
            guard definition.userDefined else {
                throw CoordinatorError(
                    .forbidden, "secret \(name) is not UserDefined: the Coordinator generates it, users cannot set it")
            }
            values[name] = try secret.value(for: definition, name: name)
        }
        try Self.checkTemplates(of: manifest, with: values, changed: Set(secrets.keys))
        var newCore = core
        newCore.userDefinedSecrets = values
        try await commit(
            newCore, basedOn: epoch,
            events: [
                AuditTrail.Event(
                    AuditEvent.secretsWritten, user: user.name,
                    details: ["secrets": secrets.keys.sorted().joined(separator: ",")])
            ])
    }

    /// Renders every marble's files and environment with the user-defined values (stand-ins for
    /// the rest), as MarbleRun does before it accepts secrets: a value that a template cannot use
    /// (a NUL byte in an environment variable, say) is refused now, not at a marble's activation.
    static func checkTemplates(of manifest: Manifest, with values: [String: SecretValue], changed: Set<String>)
        throws(CoordinatorError)
    {
        let templateValues = DryRun.values(for: manifest, actual: values.mapValues(\.templateValue))
        for (marbleName, marble) in manifest.marbles.sorted(by: { $0.key < $1.key }) {
            let items =
                marble.parameters.files.map { ($0.value, Template.Kind.file, "file \($0.key)") }
                + marble.parameters.env.map { ($0.value, Template.Kind.env, "environment variable \($0.key)") }
            for (value, kind, what) in items {
                do {
                    _ = try ParameterIssuer.render(value, kind: kind, values: templateValues, what: what)
                } catch {
                    throw CoordinatorError(
                        .invalidRequest,
                        "the secrets \(changed.sorted().joined(separator: ", ")) cannot be used by marble \(marbleName): \((error as? CoordinatorError)?.message ?? "\(error)")"
                    )
                }
            }
        }
    }

    /// The update log's lines, oldest first; see ``AuditLog`` for their format.
    public func updateLog() async throws(CoordinatorError) -> [[UInt8]] {
        try await synchronize()
        return try await trail.lines(in: sealed)
    }

    private func acceptingMarblesManifest() throws(CoordinatorError) -> Manifest {
        guard state == .acceptingMarbles, let manifest = manifest?.manifest else {
            throw CoordinatorError(.wrongState, "no manifest is set yet (state \(state.rawValue))")
        }
        return manifest
    }
}
