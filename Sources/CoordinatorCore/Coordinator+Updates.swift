import AuditLog
import Crypto
import Foundation
import JSONText
import Manifest
import Store

/// Manifest updates (compat §5): package SecurityVersion updates, and full updates that wait
/// for `UpdateThreshold` acknowledgements.
extension Coordinator {
    /// The outcome of an update request.
    public struct UpdateResult: Sendable, Hashable {
        /// Acknowledgements still needed before a full update applies; 0 once applied.
        public var missingAcknowledgments: Int
        /// Users allowed to acknowledge who have not yet.
        public var missingUsers: [String]
        /// New shares for the recovery keys, when an applied update changed them.
        public var recoverySecrets: [String: [UInt8]] = [:]
    }

    /// A full update waiting for acknowledgements.
    public struct PendingManifestUpdate: Sendable, Hashable {
        public var manifest: [UInt8]
        public var missingAcknowledgments: Int
        public var missingUsers: [String]
    }

    /// The manifest's package with SecurityVersion raised by package updates.
    func effectivePackage(_ name: String, in manifest: Manifest) -> Manifest.Package? {
        guard var package = manifest.packages[name] else { return nil }
        if let raised = core.securityVersions?[name] { package.securityVersion = raised }
        return package
    }

    /// `POST /update`: a manifest holding only `Packages.NAME.SecurityVersion` raises those
    /// packages' SecurityVersion at once (the user needs UpdateSecurityVersion on each); any
    /// other manifest proposes a full update (the user needs UpdateManifest).
    public func update(_ bytes: [UInt8], by user: User) async throws(CoordinatorError) -> UpdateResult {
        try await synchronize()
        let epoch = stateEpoch
        let current = try currentManifest()
        if let versions = try Self.packageUpdate(bytes) {
            try await updatePackages(versions, current: current, by: user, epoch: epoch)
            return UpdateResult(missingAcknowledgments: 0, missingUsers: [])
        }
        return try await proposeUpdate(bytes, current: current, by: user, epoch: epoch)
    }

    /// The pending full update; ``CoordinatorError/Code/notFound`` when there is none.
    public func pendingUpdate() throws(CoordinatorError) -> PendingManifestUpdate {
        guard let pending = core.pendingUpdate else {
            throw CoordinatorError(.notFound, "no manifest update is in progress")
        }
        return PendingManifestUpdate(
            manifest: pending.manifest, missingAcknowledgments: pending.missingAcknowledgments,
            missingUsers: pending.missingUsers)
    }

    /// Acknowledges the pending full update with its exact bytes; the last needed
    /// acknowledgement applies it.
    public func acknowledgeUpdate(_ bytes: [UInt8], by user: User) async throws(CoordinatorError) -> UpdateResult {
        try await synchronize()
        let epoch = stateEpoch
        _ = try currentManifest()
        guard user.isGranted(.updateManifest) else {
            throw CoordinatorError(.forbidden, "user \(user.name) may not update the manifest")
        }
        guard var pending = core.pendingUpdate else {
            throw CoordinatorError(.notFound, "no manifest update is in progress")
        }
        guard bytes == pending.manifest else {
            throw CoordinatorError(
                .invalidRequest,
                "this is not the pending manifest (an acknowledgement must send the same bytes; fingerprint \(ManifestDocument.fingerprint(of: pending.manifest)))"
            )
        }
        guard pending.users.contains(user.name) else {
            throw CoordinatorError(.forbidden, "user \(user.name) was not asked to acknowledge this update")
        }
        guard !pending.acknowledged.contains(user.name) else {
            throw CoordinatorError(.conflict, "user \(user.name) has already acknowledged this update")
        }
        pending.acknowledged.append(user.name)
        return try await record(pending, AuditEvent.updateAcknowledged, by: user, epoch: epoch)
    }

    /// Cancels the pending full update.
    public func cancelUpdate(by user: User) async throws(CoordinatorError) {
        try await synchronize()
        let epoch = stateEpoch
        _ = try currentManifest()
        guard user.isGranted(.updateManifest) else {
            throw CoordinatorError(.forbidden, "user \(user.name) may not update the manifest")
        }
        guard let pending = core.pendingUpdate else {
            throw CoordinatorError(.notFound, "no manifest update is in progress")
        }
        var newCore = core
        newCore.pendingUpdate = nil
        try await commit(
            newCore, basedOn: epoch,
            events: [
                Event(
                    AuditEvent.updateCancelled, user: user.name,
                    details: ["manifestFingerprint": ManifestDocument.fingerprint(of: pending.manifest)])
            ])
    }

    // MARK: Package updates

    /// The SecurityVersions of a package-only update manifest, or nil when `bytes` is another
    /// kind of manifest. A manifest with only `Packages` must give nothing but SecurityVersion.
    static func packageUpdate(_ bytes: [UInt8]) throws(CoordinatorError) -> [String: UInt64]? {
        guard case .object(let top)? = try? JSONParser().parse(bytes), top.count == 1,
            top[0].key.lowercased() == "packages", case .object(let packages) = top[0].value
        else { return nil }
        guard !packages.isEmpty else {
            throw CoordinatorError(.invalidRequest, "the update manifest names no packages")
        }
        var versions: [String: UInt64] = [:]
        for package in packages {
            let name = package.key.prefix(64)
            guard case .object(let fields) = package.value, fields.count == 1,
                fields[0].key.lowercased() == "securityversion"
            else {
                throw CoordinatorError(
                    .invalidRequest,
                    "an update manifest with only Packages may set only Packages.\(name).SecurityVersion; send a complete manifest for anything else"
                )
            }
            guard case .number(let text) = fields[0].value, let version = UInt64(text), version <= UInt16.max else {
                throw CoordinatorError(
                    .invalidRequest, "Packages.\(name).SecurityVersion must be an integer from 0 to 65535")
            }
            guard versions[package.key] == nil else {
                throw CoordinatorError(.invalidRequest, "package \(name) appears twice")
            }
            versions[package.key] = version
        }
        return versions
    }

    private func updatePackages(_ versions: [String: UInt64], current: Manifest, by user: User, epoch: UInt64)
        async throws(CoordinatorError)
    {
        for (name, version) in versions.sorted(by: { $0.key < $1.key }) {
            guard user.isGranted(.updateSecurityVersion, on: name) else {
                throw CoordinatorError(.forbidden, "user \(user.name) may not update package \(name.prefix(64))")
            }
            guard let package = effectivePackage(name, in: current) else {
                throw CoordinatorError(.notFound, "the manifest has no package \(name.prefix(64))")
            }
            guard let installed = package.securityVersion else {
                throw CoordinatorError(
                    .invalidRequest,
                    "package \(name) is pinned by UniqueID and has no SecurityVersion to raise; update the manifest instead"
                )
            }
            guard version >= installed else {
                throw CoordinatorError(
                    .invalidRequest,
                    "package \(name): SecurityVersion \(version) is below the current \(installed); downgrades are refused"
                )
            }
        }
        var newCore = core
        newCore.securityVersions = (core.securityVersions ?? [:]).merging(versions) { _, new in new }
        var newPKI = pki
        let shared = try renewCA(
            &newPKI, keeping: sharedSecrets, manifest: current, regenerate: { $0.type != "symmetric-key" })
        newCore.previousSecretValues = sharedSecrets.merging(core.userDefinedSecrets) { shared, _ in shared }
        try newCore.setPKI(newPKI)
        newCore.sharedSecrets = shared.mapValues(CoreState.StoredSecret.init)
        let events = versions.sorted { $0.key < $1.key }.map { name, version in
            Event(
                AuditEvent.packageUpdated, user: user.name,
                details: ["package": name, "securityVersion": String(version)])
        }
        try await commit(newCore, basedOn: epoch, events: events)
        pki = newPKI
        sharedSecrets = shared
    }

    // MARK: Full updates

    private func proposeUpdate(_ bytes: [UInt8], current: Manifest, by user: User, epoch: UInt64)
        async throws(CoordinatorError) -> UpdateResult
    {
        guard user.isGranted(.updateManifest) else {
            throw CoordinatorError(.forbidden, "user \(user.name) may not update the manifest")
        }
        guard core.pendingUpdate == nil else {
            throw CoordinatorError(
                .conflict, "a manifest update is already in progress: acknowledge it to apply it, or cancel it first")
        }
        let document = try Self.validated(bytes, strict: configuration.strictManifest)
        let users = User.all(in: current).filter { $0.isGranted(.updateManifest) }.map(\.name).sorted()
        let threshold = Int(current.config.updateThreshold)
        let pending = CoreState.PendingUpdate(
            manifest: document.bytes, users: users,
            required: threshold == 0 ? users.count : min(threshold, users.count),
            acknowledged: [user.name])
        return try await record(pending, AuditEvent.updateProposed, by: user, epoch: epoch)
    }

    /// Stores `pending` after a proposal or acknowledgement, logged as `event`, and applies the
    /// update in the same commit once no acknowledgement is missing.
    private func record(_ pending: CoreState.PendingUpdate, _ event: String, by user: User, epoch: UInt64)
        async throws(CoordinatorError) -> UpdateResult
    {
        var newCore = core
        newCore.pendingUpdate = pending
        var events = [
            Event(
                event, user: user.name,
                details: [
                    "manifestFingerprint": ManifestDocument.fingerprint(of: pending.manifest),
                    "missingAcknowledgments": String(pending.missingAcknowledgments),
                ])
        ]
        var applied: Applied?
        if pending.missingAcknowledgments == 0 {
            applied = try await apply(pending.manifest, to: &newCore)
            events.append(applied!.event)
        }
        try await commit(
            newCore, basedOn: epoch, events: events,
            also: (applied?.recoveryWrites ?? []) + (applied?.sealWrites ?? []),
            rekey: applied?.rekey)
        if let applied { adopt(applied) }
        return UpdateResult(
            missingAcknowledgments: pending.missingAcknowledgments, missingUsers: pending.missingUsers,
            recoverySecrets: applied?.recoverySecrets ?? [:])
    }

    /// What applying a full update changes besides the core record.
    struct Applied {
        var document: ManifestDocument
        var pki: CoordinatorPKI
        var sharedSecrets: [String: SecretValue]
        var event: Event
        /// New recovery data and shares when the recovery keys or threshold changed.
        var recoveryWrites: [StoreWrite] = []
        var recoverySecrets: [String: [UInt8]] = [:]
        /// The data key sealed again when the seal mode changed (and the key did not).
        var sealWrites: [StoreWrite] = []
        /// The state re-encrypted under a new data key, when the recovery keys changed.
        var rekey: Rekey?
    }

    /// Moving the state to a new data key: the writes and the store that reads the result.
    struct Rekey {
        var writes: [StoreWrite]
        var store: SealedStore
    }

    /// Applies `bytes` to `newCore`: the new manifest, a new intermediate and marble root, shared
    /// secrets kept when their definition is unchanged (symmetric keys) or regenerated
    /// (certificates, changed or new definitions), user-defined values kept when their definition
    /// is unchanged, the old values as `.Previous.Secrets`, and package updates cleared.
    private func apply(_ bytes: [UInt8], to newCore: inout CoreState) async throws(CoordinatorError) -> Applied {
        let document = try Self.validated(bytes, strict: configuration.strictManifest)
        guard let manifest = document.manifest, let old = self.document?.manifest else {
            throw CoordinatorError(.internalFailure, "the manifest to apply did not parse")
        }
        var newPKI = pki
        let kept = sharedSecrets.filter { name, _ in
            old.secrets[name] == manifest.secrets[name] && manifest.secrets[name]?.type == "symmetric-key"
        }
        let shared = try renewCA(&newPKI, keeping: kept, manifest: manifest, regenerate: { _ in true })
        newCore.previousSecretValues = sharedSecrets.merging(core.userDefinedSecrets) { shared, _ in shared }
        newCore.userDefinedSecrets = core.userDefinedSecrets.filter { name, _ in
            old.secrets[name] == manifest.secrets[name]
        }
        newCore.manifest = document.bytes
        newCore.securityVersions = nil
        newCore.pendingUpdate = nil
        try newCore.setPKI(newPKI)
        newCore.sharedSecrets = shared.mapValues(CoreState.StoredSecret.init)
        var applied = Applied(
            document: document, pki: newPKI, sharedSecrets: shared,
            event: Event(AuditEvent.updateApplied, user: nil, details: ["manifestFingerprint": document.fingerprint]))
        // New recovery keys: the state moves to a new data key, so that shares held by removed
        // keys open nothing written from now on, and the new keys get shares of the new key.
        if manifest.recoveryKeys != old.recoveryKeys
            || manifest.config.recoveryThreshold != old.config.recoveryThreshold
        {
            let newKey = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
            let moved = try await sealed.rekeyWrites(to: newKey, replacing: ["core", AuditTrail.headName])
            // Replicas' copies of the old key go: they obtain the new one from a running replica.
            applied.rekey = Rekey(
                writes: moved.writes + (try await sealedKeyWrites(newKey, mode: SealMode(manifest))),
                store: moved.store)
            (applied.recoveryWrites, applied.recoverySecrets) = try await recoveryData(for: manifest, dataKey: newKey)
        } else {
            applied.sealWrites = try await resealWrites(for: manifest)
        }
        return applied
    }

    private func adopt(_ applied: Applied) {
        document = applied.document
        pki = applied.pki
        sharedSecrets = applied.sharedSecrets
    }

    /// Renews the intermediate and marble root in `newPKI` and returns the manifest's shared
    /// secrets: `keeping` where given, the others generated anew under the new marble root when
    /// `regenerate` says so (else kept as they are).
    private func renewCA(
        _ newPKI: inout CoordinatorPKI, keeping: [String: SecretValue], manifest: Manifest,
        regenerate: (Manifest.Secret) -> Bool
    ) throws(CoordinatorError) -> [String: SecretValue] {
        let now = configuration.now()
        do {
            try newPKI.renewIntermediate(
                curve: CACurve(rawValue: core.curve) ?? .p256, now: now,
                validity: max(86_400, newPKI.root.notValidAfter.timeIntervalSince(now)))
            let factory = SecretFactory(pki: newPKI, now: now)
            var secrets: [String: SecretValue] = [:]
            for (name, definition) in manifest.secrets where definition.shared && !definition.userDefined {
                if let value = keeping[name] {
                    secrets[name] = value
                } else if let value = sharedSecrets[name], !regenerate(definition) {
                    secrets[name] = value
                } else {
                    secrets[name] = try factory.generateShared(definition)
                }
            }
            return secrets
        } catch let error as CoordinatorError {
            throw error
        } catch {
            throw CoordinatorError(.internalFailure, "renewing the intermediate CA and shared secrets failed")
        }
    }

    static func validated(_ bytes: [UInt8], strict: Bool) throws(CoordinatorError) -> ManifestDocument {
        let document = ManifestDocument.parse(bytes, options: ManifestOptions(strict: strict))
        guard document.isValid, document.manifest != nil else {
            let summary = document.errors.prefix(20).map(\.description).joined(separator: "; ")
            throw CoordinatorError(.invalidManifest, "the manifest has \(document.errors.count) error(s): \(summary)")
        }
        return document
    }

    private func currentManifest() throws(CoordinatorError) -> Manifest {
        guard state == .acceptingMarbles, let manifest = document?.manifest else {
            throw CoordinatorError(.wrongState, "no manifest is set yet (state \(state.rawValue))")
        }
        return manifest
    }

    // MARK: Committing

    typealias Event = AuditTrail.Event

    /// Writes `newCore` and the log entries in one durable commit, then adopts them. With
    /// `rekey`, the same commit moves the whole state to the new data key. `epoch` is the state
    /// `newCore` was computed from: if another change was committed since (the operation
    /// awaited in between), nothing is written and the caller is told to retry, so that no
    /// change is lost under one computed from the older state.
    func commit(
        _ newCore: CoreState, basedOn epoch: UInt64, events: [Event], also extra: [StoreWrite] = [],
        rekey: Rekey? = nil
    ) async throws(CoordinatorError) {
        guard epoch == stateEpoch else {
            throw CoordinatorError(
                .conflict,
                "the Coordinator's state changed while this request was processed (another change was committed first); nothing of this one was applied: retry"
            )
        }
        let target = rekey?.store ?? sealed
        let (logWrites, nextTrail) = try (rekey == nil ? trail : trail.rebased()).appending(
            events, at: configuration.now(), signedBy: pki.rootKey, in: target)
        let coreWrite = try target.write("core", newCore.encoded(), expectedVersion: rekey == nil ? coreVersion : nil)
        do {
            try await target.commit((rekey?.writes ?? []) + [coreWrite] + logWrites + extra)
        } catch  where error.code == .conflict && configuration.sharedStore {
            try? await reload()
            throw CoordinatorError(
                .conflict,
                "another Coordinator replica changed the state at the same time; nothing of this change was applied: retry"
            )
        }
        core = newCore
        coreVersion = rekey == nil ? coreVersion + 1 : 1
        stateEpoch += 1
        trail = nextTrail
        if let rekey { sealed = rekey.store }
        cachedIssuer = nil
    }
}
