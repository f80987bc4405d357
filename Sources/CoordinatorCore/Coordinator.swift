import Attestation
import AuditLog
import Crypto
import Foundation
import Manifest
import Store
import SwiftASN1
import X509

/// The Coordinator's logic without networking (compat §1–§5): its state, CA, manifest, secrets
/// and marble activation. Servers call these async functions; tests call them directly.
public actor Coordinator {
    /// MarbleRun's state codes.
    public enum State: Int, Sendable {
        case uninitialized = 0
        case recovery = 1
        case acceptingManifest = 2
        case acceptingMarbles = 3

        public var message: String {
            switch self {
            case .uninitialized: return "Coordinator is starting."
            case .recovery:
                return
                    "Coordinator is in recovery mode. Either upload a key to unseal the saved state, or set a new manifest."
            case .acceptingManifest: return "Coordinator is ready to accept a manifest."
            case .acceptingMarbles: return "Coordinator is running correctly and ready to accept marbles."
            }
        }
    }

    public struct Configuration: Sendable {
        public var curve: CACurve = .p256
        /// Validity of marble certificates.
        public var marbleCertificateValidity: TimeInterval = 365 * 86_400
        /// Unknown manifest fields are errors instead of warnings.
        public var strictManifest = false
        /// Names in the root certificate, which is also the client API's TLS certificate.
        /// Used only when a new root is created.
        public var dnsNames: [String] = ["localhost"]
        public var now: @Sendable () -> Date = Date.init
        /// Other Coordinators (replicas) write the same store: check the stored state's version
        /// before each operation and reload it when it changed.
        public var sharedStore = false
        /// The identity a replica's quote must show to be handed the data key: this
        /// Coordinator's own (key distribution is off when nil).
        public var replicaIdentity: PackagePolicy?
        /// Set when the store is known to have held a state (it names where): an empty store
        /// then stops start-up instead of becoming a fresh state.
        public var existingState: String?

        public init() {}
    }

    /// The result of setting a manifest.
    public struct ManifestResult: Sendable {
        /// Warnings the manifest check found (unknown fields and the like): shown to the user.
        public var warnings: [ManifestProblem]
        /// Recovery key name → its share of the data key, RSA-OAEP-SHA256-encrypted to that key;
        /// empty without recovery keys. Shown once, never stored in the clear.
        public var recoverySecrets: [String: [UInt8]] = [:]
    }

    let configuration: Configuration
    let verifier: QuoteVerifier
    let collateralProvider: any CollateralProvider
    /// Replaced when the state is re-encrypted under a new data key.
    var sealed: SealedStore
    /// Seals a new data key for this machine.
    let sealer: any Sealer
    public private(set) var state: State
    public internal(set) var pki: CoordinatorPKI
    var rootSecret: SymmetricKey
    var core: CoreState
    var coreVersion: Int64
    /// Grows with every change of `core` (commit or reload): an activation is checked and
    /// issued under one epoch (``activate(_:peerCertificate:)``).
    var stateEpoch: UInt64 = 0
    var document: ManifestDocument?
    var sharedSecrets: [String: SecretValue]
    /// The update log's position; appended to in the same commit as each change.
    var trail: AuditTrail
    /// Where a replica gets the data key when its sealer cannot open any sealed copy.
    let dataKeySource: DataKeySource?
    /// Replicas count activations of unlimited marble types in one of this many records, each
    /// in its own (a random pick, picked again after a conflict), so that their commits soon stop
    /// racing for the same record.
    static let countShards = 8
    var countShard = Int.random(in: 0..<Coordinator.countShards)
    private var prepared: [SHA256Digest: PreparedCollateral] = [:]
    /// Rebuilt whenever the PKI or the shared secrets change (set to nil there).
    var cachedIssuer: ParameterIssuer?

    /// How a Coordinator opens its store: ready to serve, or in recovery mode.
    public enum Opening: Sendable {
        case ready(Coordinator)
        /// The data key cannot be unsealed here but the manifest had recovery keys.
        case recovery(RecoveryCoordinator)
    }

    /// Starts a Coordinator on `store`: a new one when the store is empty, else the one whose
    /// state the store holds, unsealed with `sealer`. State that cannot be unsealed or does not
    /// authenticate stops start-up with the reason; it is never replaced by a fresh state.
    public static func start(
        configuration: Configuration = Configuration(), verifier: QuoteVerifier,
        collateralProvider: any CollateralProvider,
        store: any StateStore, sealer: any Sealer, dataKeySource: DataKeySource? = nil
    ) async throws(CoordinatorError) -> Coordinator {
        switch try await open(
            configuration: configuration, verifier: verifier, collateralProvider: collateralProvider, store: store,
            sealer: sealer, dataKeySource: dataKeySource)
        {
        case .ready(let coordinator): return coordinator
        case .recovery(let recovery): throw CoordinatorError(.sealedState, recovery.reason)
        }
    }

    /// Obtains the state's data key from a running replica (mutual attestation), for a replica
    /// whose sealer cannot open any sealed copy of it.
    public typealias DataKeySource = @Sendable () async throws -> [UInt8]

    /// Where replicas keep the data key sealed with their own sealer (`sealed-data-key/ID`).
    static let replicaKeyPrefix = SealedStore.sealedDataKeyName + "/"

    /// As ``start(configuration:verifier:collateralProvider:store:sealer:)``, but a data key that
    /// cannot be unsealed while recovery data exists opens recovery mode instead of failing. A
    /// replica whose sealer opens no sealed copy of the key asks `dataKeySource` (a running
    /// replica), checks the key against the state and keeps a copy sealed with its own sealer.
    public static func open(
        configuration: Configuration = Configuration(), verifier: QuoteVerifier,
        collateralProvider: any CollateralProvider,
        store: any StateStore, sealer: any Sealer, dataKeySource: DataKeySource? = nil
    ) async throws(CoordinatorError) -> Opening {
        let sealedKey: StoredValue?
        let recoveryRecord: StoredValue?
        do {
            sealedKey = try await store.read(SealedStore.sealedDataKeyName)
            recoveryRecord = try await store.read(RecoveryData.storeKey)
        } catch {
            throw CoordinatorError(.storeUnavailable, "the state store failed: \(error.message)")
        }
        guard let sealedKey else {
            if let existing = configuration.existingState {
                throw CoordinatorError(
                    .sealedState,
                    "\(existing) is empty or missing; refusing to start a fresh state over it. Restore the database from a backup, or remove the seal directory to start over (everything in it is lost)"
                )
            }
            do {
                return .ready(
                    try await create(
                        configuration: configuration, verifier: verifier, collateralProvider: collateralProvider,
                        store: store, sealer: sealer, dataKeySource: dataKeySource))
            } catch  where error.code == .conflict {
                // Another replica created the state at the same moment: open that one.
                return try await open(
                    configuration: configuration, verifier: verifier, collateralProvider: collateralProvider,
                    store: store, sealer: sealer, dataKeySource: dataKeySource)
            }
        }
        let dataKey: [UInt8]
        do {
            dataKey = try await unsealDataKey(sealedKey, store: store, sealer: sealer, dataKeySource: dataKeySource)
        } catch {
            guard let recoveryRecord, error.code == .sealedState else { throw error }
            return .recovery(
                try RecoveryCoordinator(
                    reason: "\(error.message); the manifest has recovery keys: post the recovery secrets to recover",
                    store: store, sealer: sealer, data: try RecoveryData.decode(recoveryRecord.bytes),
                    now: configuration.now))
        }
        let sealed = SealedStore(store: store, dataKey: dataKey)
        guard let record = try await sealed.read("core") else {
            throw CoordinatorError(
                .sealedState, "the store has a sealed data key but no Coordinator state; refusing to start over it")
        }
        let loaded = try await Loaded(record, from: sealed, configuration: configuration)
        return .ready(
            Coordinator(
                configuration: configuration, verifier: verifier, collateralProvider: collateralProvider,
                sealed: sealed, sealer: sealer, dataKeySource: dataKeySource,
                pki: loaded.pki, core: loaded.core,
                coreVersion: record.version, document: loaded.document, trail: loaded.trail))
    }

    /// The data key: unsealed from the main record or this replica's copy, or obtained from a
    /// running replica, checked to open the state, and then sealed for this replica.
    static func unsealDataKey(
        _ sealedKey: StoredValue, store: any StateStore, sealer: any Sealer, dataKeySource: DataKeySource?
    ) async throws(CoordinatorError) -> [UInt8] {
        let firstFailure: CoordinatorError
        do {
            return try sealer.unseal(sealedKey.bytes)
        } catch {
            firstFailure = error
        }
        let copies: [String]
        do {
            copies = try await store.keys(withPrefix: replicaKeyPrefix)
            for name in copies {
                if let copy = try await store.read(name), let key = try? sealer.unseal(copy.bytes) {
                    // A copy sealed before the key changed (re-encryption) no longer opens the state.
                    if try await SealedStore(store: store, dataKey: key).read("core") != nil { return key }
                }
            }
        } catch let error as CoordinatorError {
            throw error
        } catch {
            throw CoordinatorError(.storeUnavailable, "the state store failed: \(error)")
        }
        guard let dataKeySource else { throw firstFailure }
        let key: [UInt8]
        do {
            key = try await dataKeySource()
        } catch {
            throw CoordinatorError(
                .sealedState,
                "this replica cannot unseal the data key and no running replica handed it over: \(error)")
        }
        guard key.count == 32, (try? await SealedStore(store: store, dataKey: key).read("core")) != nil else {
            throw CoordinatorError(.sealedState, "the key a replica handed over does not open the state")
        }
        let name = replicaKeyPrefix + Hex.encode(SymmetricKey(size: .bits128).withUnsafeBytes { Array($0) })
        let sealedCopy = try sealer.seal(key)
        do {
            try await store.commit([StoreWrite(key: name, value: sealedCopy, expectedVersion: nil)])
        } catch {
            throw CoordinatorError(.storeUnavailable, "keeping this replica's sealed key failed: \(error.message)")
        }
        return key
    }

    /// The state a Coordinator keeps in memory, read and checked from the store.
    struct Loaded {
        var core: CoreState
        var pki: CoordinatorPKI
        var document: ManifestDocument?
        var trail: AuditTrail

        init(_ record: (bytes: [UInt8], version: Int64), from sealed: SealedStore, configuration: Configuration)
            async throws(CoordinatorError)
        {
            core = try CoreState.decode(record.bytes)
            do {
                pki = try core.pki
            } catch {
                throw CoordinatorError(.sealedState, "the sealed CA keys or certificates do not parse")
            }
            if let bytes = core.manifest {
                document = ManifestDocument.parse(bytes, options: ManifestOptions(strict: configuration.strictManifest))
                guard document?.isValid == true else {
                    throw CoordinatorError(.sealedState, "the sealed manifest no longer validates")
                }
            }
            trail = try await AuditTrail.load(from: sealed)
            try await trail.verify(in: sealed, root: pki.root)
        }
    }

    /// For replicas on one store: when another Coordinator changed the state since this one
    /// last read it, reload it (manifest, CA, secrets, log head), so no answer comes from a
    /// stale copy. A no-op unless ``Configuration/sharedStore`` is set.
    public func synchronize() async throws(CoordinatorError) {
        guard configuration.sharedStore else { return }
        let stored: StoredValue?
        do {
            stored = try await sealed.store.read(sealed.storageName("core"))
        } catch {
            throw CoordinatorError(.storeUnavailable, "the state store failed: \(error.message)")
        }
        if stored?.version == coreVersion { return }
        try await reload()
    }

    /// Reads the whole state again; a state re-encrypted by another replica (new data key) is
    /// opened with the newly sealed key.
    func reload() async throws(CoordinatorError) {
        var current = sealed
        var record = try await current.read("core")
        if record == nil {
            let sealedKey: StoredValue?
            do {
                sealedKey = try await sealed.store.read(SealedStore.sealedDataKeyName)
            } catch {
                throw CoordinatorError(.storeUnavailable, "the state store failed: \(error.message)")
            }
            guard let sealedKey else {
                throw CoordinatorError(.sealedState, "the Coordinator state disappeared from the store")
            }
            let dataKey = try await Self.unsealDataKey(
                sealedKey, store: sealed.store, sealer: sealer, dataKeySource: dataKeySource)
            current = SealedStore(store: sealed.store, dataKey: dataKey)
            record = try await current.read("core")
        }
        guard let record else {
            throw CoordinatorError(.sealedState, "the Coordinator state disappeared from the store")
        }
        let loaded = try await Loaded(record, from: current, configuration: configuration)
        sealed = current
        core = loaded.core
        coreVersion = record.version
        stateEpoch += 1
        pki = loaded.pki
        document = loaded.document
        trail = loaded.trail
        rootSecret = SymmetricKey(data: loaded.core.rootSecret)
        sharedSecrets = loaded.core.secrets
        state = loaded.document == nil ? .acceptingManifest : .acceptingMarbles
        cachedIssuer = nil
    }

    private static func create(
        configuration: Configuration, verifier: QuoteVerifier, collateralProvider: any CollateralProvider,
        store: any StateStore, sealer: any Sealer, dataKeySource: DataKeySource?
    ) async throws(CoordinatorError) -> Coordinator {
        let dataKey = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        let sealed = SealedStore(store: store, dataKey: dataKey)
        let core: CoreState
        let pki: CoordinatorPKI
        do {
            if !(try await store.keys(withPrefix: "k/")).isEmpty {
                throw CoordinatorError(
                    .sealedState, "the store holds records but no sealed data key; refusing to start over it")
            }
            pki = try CoordinatorPKI.generate(
                curve: configuration.curve, now: configuration.now(), dnsNames: configuration.dnsNames)
            core = try CoreState(
                pki: pki, curve: configuration.curve,
                rootSecret: SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }, manifest: nil,
                sharedSecrets: [:])
        } catch let error as CoordinatorError {
            throw error
        } catch let error as StoreError {
            throw CoordinatorError(.storeUnavailable, "the state store failed: \(error.message)")
        } catch {
            throw CoordinatorError(.internalFailure, "creating the Coordinator's CA failed")
        }
        try await sealed.commit([
            StoreWrite(key: SealedStore.sealedDataKeyName, value: try sealer.seal(dataKey), expectedVersion: nil),
            try sealed.write("core", core.encoded(), expectedVersion: nil),
        ])
        return Coordinator(
            configuration: configuration, verifier: verifier, collateralProvider: collateralProvider, sealed: sealed,
            sealer: sealer, dataKeySource: dataKeySource, pki: pki, core: core,
            coreVersion: 1, document: nil, trail: AuditTrail())
    }

    private init(
        configuration: Configuration, verifier: QuoteVerifier, collateralProvider: any CollateralProvider,
        sealed: SealedStore, sealer: any Sealer, dataKeySource: DataKeySource?,
        pki: CoordinatorPKI, core: CoreState, coreVersion: Int64, document: ManifestDocument?, trail: AuditTrail
    ) {
        self.trail = trail
        self.sealer = sealer
        self.dataKeySource = dataKeySource
        self.configuration = configuration
        self.verifier = verifier
        self.collateralProvider = collateralProvider
        self.sealed = sealed
        self.pki = pki
        self.core = core
        self.coreVersion = coreVersion
        self.document = document
        rootSecret = SymmetricKey(data: core.rootSecret)
        sharedSecrets = core.secrets
        state = document == nil ? .acceptingManifest : .acceptingMarbles
    }

    /// The manifest as set, its exact bytes and fingerprint; nil before one is set.
    public var manifest: ManifestDocument? { document }

    /// The manifest's marble types (empty before one is set).
    public var marbleTypes: Set<String> { Set(document?.manifest.map { Array($0.marbles.keys) } ?? []) }

    /// The root key's ECDSA signature (ASN.1 DER) over SHA-256 of the manifest's bytes, as
    /// MarbleRun's `manifestSignatureRootECDSA`; nil before a manifest is set.
    public func manifestSignature() throws(CoordinatorError) -> [UInt8]? {
        guard let document else { return nil }
        do {
            return try pki.rootKey.signature(forDigest: SHA256.hash(data: document.bytes))
        } catch {
            throw CoordinatorError(.internalFailure, "signing the manifest failed")
        }
    }

    /// Activations so far of a marble type.
    public func activationCount(_ marbleType: String) async throws(CoordinatorError) -> UInt64 {
        try await synchronize()
        return try await readCount(record: "count/\(marbleType)").count + shardTotal(marbleType)
    }

    /// The record an activation of `marbleType` is counted in: the type's one record, or with
    /// replicas and no limit shard `shard` of it.
    private func countRecord(_ marbleType: String, limit: UInt64, shard: Int) -> String {
        configuration.sharedStore && limit == 0 ? "count-shard/\(shard)/\(marbleType)" : "count/\(marbleType)"
    }

    /// Activations counted in shards (replicas, unlimited types); 0 without replicas.
    private func shardTotal(_ marbleType: String) async throws(CoordinatorError) -> UInt64 {
        guard configuration.sharedStore else { return 0 }
        var total: UInt64 = 0
        for shard in 0..<Self.countShards {
            total += try await readCount(record: "count-shard/\(shard)/\(marbleType)").count
        }
        return total
    }

    private func readCount(record name: String) async throws(CoordinatorError) -> (count: UInt64, version: Int64?) {
        guard let record = try await sealed.read(name) else { return (0, nil) }
        guard record.bytes.count == 8 else {
            throw CoordinatorError(.sealedState, "the activation count \(name) is malformed")
        }
        return (record.bytes.reduce(0) { $0 << 8 | UInt64($1) }, record.version)
    }

    // MARK: Manifest

    /// Validates and sets the manifest, generating its shared secrets. Allowed once, in
    /// ``State/acceptingManifest``. It is acknowledged only once durable; on any error nothing
    /// changes.
    public func setManifest(_ bytes: [UInt8]) async throws(CoordinatorError) -> ManifestResult {
        try await synchronize()
        let epoch = stateEpoch
        guard state == .acceptingManifest else {
            throw CoordinatorError(
                .wrongState, "a manifest is already set; change it with an update (state \(state.rawValue))")
        }
        let document = ManifestDocument.parse(bytes, options: ManifestOptions(strict: configuration.strictManifest))
        guard document.isValid, let manifest = document.manifest else {
            let summary = document.errors.prefix(20).map(\.description).joined(separator: "; ")
            throw CoordinatorError(.invalidManifest, "the manifest has \(document.errors.count) error(s): \(summary)")
        }
        var secrets: [String: SecretValue] = [:]
        let factory = SecretFactory(pki: pki, now: configuration.now())
        var newCore = core
        do {
            for (name, definition) in manifest.secrets where definition.shared && !definition.userDefined {
                secrets[name] = try factory.generateShared(definition)
            }
            newCore = try CoreState(
                pki: pki, curve: CACurve(rawValue: core.curve) ?? .p256, rootSecret: core.rootSecret, manifest: bytes,
                sharedSecrets: secrets)
        } catch let error as CoordinatorError {
            throw error
        } catch {
            throw CoordinatorError(.internalFailure, "generating the manifest's secrets failed")
        }
        let (recoveryWrites, recoverySecrets) = try await recoveryData(for: manifest)
        try await commit(
            newCore, basedOn: epoch,
            events: [
                AuditTrail.Event(
                    AuditEvent.manifestSet, user: nil, details: ["manifestFingerprint": document.fingerprint])
            ], also: recoveryWrites)
        self.document = document
        sharedSecrets = secrets
        cachedIssuer = nil
        state = .acceptingMarbles
        return ManifestResult(warnings: document.warnings, recoverySecrets: recoverySecrets)
    }

    // MARK: Activation

    /// Activates a marble (compat §2). `peerCertificate` is the DER certificate the marble
    /// presented on the mutual-TLS connection; the quote must bind it. On any error nothing
    /// changes: no certificate is issued and no activation is counted.
    public func activate(_ request: ActivationRequest, peerCertificate: [UInt8]) async throws(CoordinatorError)
        -> ActivationParameters
    {
        try await synchronize()
        // Everything below is checked against this state; issuing and counting refuse if it changed.
        let epoch = stateEpoch
        guard state == .acceptingMarbles, let document, let manifest = document.manifest else {
            throw CoordinatorError(
                .wrongState, "no manifest is set yet: the Coordinator cannot activate marbles (state \(state.rawValue))"
            )
        }
        guard let marble = manifest.marbles[request.marbleType] else {
            throw CoordinatorError(
                .unknownMarbleType, "the manifest has no marble type \"\(request.marbleType.prefix(64))\"")
        }
        guard let uuid = UUID(uuidString: request.uuid) else {
            throw CoordinatorError(.invalidRequest, "the UUID \"\(request.uuid.prefix(64))\" is not a UUID")
        }
        guard let package = effectivePackage(marble.package, in: manifest) else {
            throw CoordinatorError(.internalFailure, "the manifest's package \(marble.package) is missing")
        }
        let (quote, collateral) = try await preparedQuote(request.quote)
        // Verification and signing run off the actor, so activations use every core.
        let csr = try await Self.attest(
            quote, with: collateral, verifier: verifier, at: configuration.now(), peerCertificate: peerCertificate,
            package: package, packageName: marble.package, csr: request.csr)

        let uuidRecord = "uuid/\(uuid.uuidString.lowercased())"
        let knownType = try await sealed.read(uuidRecord).map { String(decoding: $0.bytes, as: UTF8.self) }
        if let knownType, knownType != request.marbleType {
            throw CoordinatorError(
                .invalidRequest, "UUID \(uuid) was activated as another marble type; a UUID belongs to one marble")
        }
        // Every activation counts, a known UUID's too (MarbleRun: activations >= MaxActivations
        // refuses): otherwise a host could start any number of copies under one UUID.
        // A fast refusal before issuing anything (one read: shards, which only hold activations
        // from before a limit was set, are added by the count's commit, which checks again).
        if marble.maxActivations > 0,
            try await readCount(record: "count/\(request.marbleType)").count >= marble.maxActivations
        {
            throw CoordinatorError(
                .activationLimit,
                "marble type \(request.marbleType) may be activated \(marble.maxActivations) time(s); it has been")
        }
        try checkEpoch(epoch)
        let issuer = try parameterIssuer()
        let parameters = try await Self.issue(
            issuer, marble: marble, manifest: manifest, marbleType: request.marbleType, uuid: uuid, csr: csr,
            now: configuration.now())
        try await countActivation(
            of: request.marbleType, uuidRecord: knownType == nil ? uuidRecord : nil, limit: marble.maxActivations,
            epoch: epoch)
        return parameters
    }

    static let manifestChanged = CoordinatorError(
        .manifestChanged, "the manifest changed during activation; nothing was issued or counted: retry")

    static let uuidOfAnotherType = CoordinatorError(
        .invalidRequest, "this UUID was activated as another marble type; a UUID belongs to one marble")

    /// Refuses an activation checked under an earlier state than the current one.
    private func checkEpoch(_ epoch: UInt64) throws(CoordinatorError) {
        guard epoch == stateEpoch else { throw Self.manifestChanged }
    }

    /// An activation waiting to be counted by the next group commit.
    private struct PendingCount {
        var marbleType: String
        /// The UUID's record to write with the count; nil when it was already stored.
        var uuidRecord: String?
        var limit: UInt64
        var epoch: UInt64
        var done: CheckedContinuation<Result<Void, CoordinatorError>, Never>
    }

    private var pendingCounts: [PendingCount] = []
    private var isCommittingCounts = false

    /// Counts an activation durably. Concurrent activations are group-committed: the
    /// activations waiting while one commit runs are written together in the next one, so the
    /// limit holds, none is lost, and one durable write serves many marbles.
    private func countActivation(of marbleType: String, uuidRecord: String?, limit: UInt64, epoch: UInt64)
        async throws(CoordinatorError)
    {
        let result = await withCheckedContinuation { continuation in
            pendingCounts.append(
                PendingCount(
                    marbleType: marbleType, uuidRecord: uuidRecord, limit: limit, epoch: epoch, done: continuation))
            if !isCommittingCounts {
                isCommittingCounts = true
                Task { await self.commitPendingCounts() }
            }
        }
        try result.get()
    }

    private func commitPendingCounts() async {
        while !pendingCounts.isEmpty {
            let batch = pendingCounts
            pendingCounts = []
            let results = await commitCounts(batch)
            for (pending, result) in zip(batch, results) { pending.done.resume(returning: result) }
        }
        isCommittingCounts = false
    }

    /// Commits one batch in a single transaction. A conflict means another writer of the store
    /// (a replica) counted meanwhile: the batch is read again and retried.
    private func commitCounts(_ batch: [PendingCount]) async -> [Result<Void, CoordinatorError>] {
        var lastError = CoordinatorError(.conflict, "too many concurrent activations; retry")
        for attempt in 1...8 {
            let attemptKey = sealed.dataKeyBytes
            let attemptEpoch = stateEpoch
            let attemptCoreVersion = coreVersion
            do throws(CoordinatorError) {
                var results: [Result<Void, CoordinatorError>] = []
                // Per count record: its stored value and version, what this batch adds, and (for a
                // limit) what shards hold besides it.
                var counts: [String: (stored: UInt64, version: Int64?, added: UInt64, others: UInt64)] = [:]
                let shard = countShard
                var writes: [StoreWrite] = []
                // UUID records this batch writes, with their marble types.
                var written: [String: String] = [:]
                for pending in batch {
                    if pending.epoch != attemptEpoch {
                        results.append(.failure(Self.manifestChanged))
                        continue
                    }
                    // The first attempt trusts activate's read: a UUID record is written only if
                    // absent, so a UUID stored meanwhile makes the commit conflict and the retry
                    // reads it.
                    var uuidWrite = pending.uuidRecord
                    if let name = uuidWrite {
                        var known = written[name]
                        if known == nil, attempt > 1 {
                            known = try await sealed.read(name).map { String(decoding: $0.bytes, as: UTF8.self) }
                        }
                        if let known {
                            guard known == pending.marbleType else {
                                results.append(.failure(Self.uuidOfAnotherType))
                                continue
                            }
                            uuidWrite = nil
                        }
                    }
                    let record = countRecord(pending.marbleType, limit: pending.limit, shard: shard)
                    if counts[record] == nil {
                        let (stored, version) = try await readCount(record: record)
                        let others = pending.limit > 0 ? try await shardTotal(pending.marbleType) : 0
                        counts[record] = (stored, version, 0, others)
                    }
                    let entry = counts[record]!
                    if pending.limit > 0, entry.others + entry.stored + entry.added >= pending.limit {
                        results.append(
                            .failure(
                                CoordinatorError(
                                    .activationLimit,
                                    "marble type \(pending.marbleType) may be activated \(pending.limit) time(s); it has been"
                                )))
                        continue
                    }
                    counts[record]!.added += 1
                    if let name = uuidWrite {
                        written[name] = pending.marbleType
                        writes.append(try sealed.write(name, Array(pending.marbleType.utf8), expectedVersion: nil))
                    }
                    results.append(.success(()))
                }
                for (record, entry) in counts where entry.added > 0 {
                    let bytes = withUnsafeBytes(of: (entry.stored + entry.added).bigEndian) { Array($0) }
                    writes.append(try sealed.write(record, bytes, expectedVersion: entry.version))
                }
                if !writes.isEmpty {
                    // The count lands only if the state the activations were checked against is
                    // still the stored one: an update committed meanwhile makes this conflict.
                    writes.append(.check(sealed.storageName("core"), at: attemptCoreVersion))
                    try await sealed.commit(writes)
                    // Re-encrypted during this attempt (a recovery-key update): these records may
                    // have gone to the old names; count again in the new state.
                    if sealed.dataKeyBytes != attemptKey {
                        lastError = CoordinatorError(.conflict, "the state was re-encrypted during the commit")
                        continue
                    }
                }
                return results
            } catch {
                guard error.code == .conflict else { return batch.map { _ in .failure(error) } }
                lastError = error
                countShard = Int.random(in: 0..<Self.countShards)
                if await coreChanged(since: attemptCoreVersion) || stateEpoch != attemptEpoch {
                    return batch.map { _ in .failure(Self.manifestChanged) }
                }
                continue
            }
        }
        return batch.map { _ in .failure(lastError) }
    }

    /// The stored state is no longer at `version` (or cannot be read to tell).
    private func coreChanged(since version: Int64) async -> Bool {
        guard let stored = try? await sealed.store.read(sealed.storageName("core")) else { return true }
        return stored.version != version
    }

    /// The issuer for the current PKI and shared secrets, made once per manifest.
    private func parameterIssuer() throws(CoordinatorError) -> ParameterIssuer {
        if let issuer = cachedIssuer { return issuer }
        do {
            let issuer = try ParameterIssuer(
                pki: pki, marbleCertificateValidity: configuration.marbleCertificateValidity,
                sharedSecrets: sharedSecrets.merging(core.userDefinedSecrets) { shared, _ in shared },
                previousSecrets: core.previousSecretValues, rootSecret: rootSecret)
            cachedIssuer = issuer
            return issuer
        } catch {
            throw CoordinatorError(.internalFailure, "the Coordinator's certificates do not serialize")
        }
    }

    /// The parsed quote and the prepared collateral of its platform (prepared once while valid).
    func preparedQuote(_ bytes: [UInt8]) async throws(CoordinatorError) -> (Quote, PreparedCollateral) {
        do {
            let quote = try Quote(parsing: bytes)
            let collateral = try await collateralProvider.collateral(for: quote)
            let now = configuration.now()
            var hasher = SHA256()
            for part in [
                collateral.tcbInfo.bytes, collateral.qeIdentity.bytes, collateral.rootCACRL.der, collateral.pckCRL.der,
            ] {
                hasher.update(data: part)
            }
            let key = hasher.finalize()
            if let known = prepared[key], now <= known.validUntil { return (quote, known) }
            let preparedCollateral = try verifier.prepare(collateral, at: now)
            prepared = prepared.filter { now <= $0.value.validUntil }
            prepared[key] = preparedCollateral
            return (quote, preparedCollateral)
        } catch {
            throw Self.rejected(error)
        }
    }

    private static func rejected(_ error: AttestationError) -> CoordinatorError {
        CoordinatorError(.attestation, "the quote was rejected: \(error.message) [\(error.code)]")
    }

    /// Verifies the quote, its binding to the marble's TLS key and the package policy, and
    /// parses the CSR.
    nonisolated private static func attest(
        _ quote: Quote, with collateral: PreparedCollateral, verifier: QuoteVerifier, at now: Date,
        peerCertificate: [UInt8], package: Manifest.Package, packageName: String, csr: [UInt8]
    ) async throws(CoordinatorError) -> CertificateSigningRequest {
        let request = try parseCSR(csr)
        let verified: VerifiedQuote
        do {
            verified = try verifier.verify(quote, with: collateral, at: now)
        } catch {
            throw rejected(error)
        }
        try checkBinding(verified, peerCertificate: peerCertificate)
        do {
            try PackagePolicy(package).check(verified)
        } catch {
            throw CoordinatorError(.attestation, "the quote does not match package \(packageName): \(error.message)")
        }
        return request
    }

    nonisolated private static func issue(
        _ issuer: ParameterIssuer, marble: Manifest.Marble, manifest: Manifest, marbleType: String, uuid: UUID,
        csr: CertificateSigningRequest, now: Date
    ) async throws(CoordinatorError) -> ActivationParameters {
        do {
            return try issuer.renderParameters(
                marble: marble, manifest: manifest, marbleType: marbleType, uuid: uuid, csr: csr, now: now)
        } catch let error as CoordinatorError {
            throw error
        } catch {
            throw CoordinatorError(.internalFailure, "issuing the marble's certificate failed")
        }
    }

    /// The quote's report data must start with SHA-256 of the marble's TLS certificate (or, as
    /// EGo marbles do, of its public key info).
    static func checkBinding(_ quote: VerifiedQuote, peerCertificate: [UInt8]) throws(CoordinatorError) {
        let bound = Array(quote.reportData.prefix(32))
        if bound == Array(SHA256.hash(data: peerCertificate)) { return }
        if let certificate = try? Certificate(derEncoded: peerCertificate) {
            var spki = DER.Serializer()
            if (try? spki.serialize(certificate.publicKey)) != nil,
                bound == Array(SHA256.hash(data: spki.serializedBytes))
            {
                return
            }
        }
        throw CoordinatorError(
            .keyBinding,
            "the quote does not bind the TLS certificate of this connection (a quote is only valid for the key it was made for)"
        )
    }

    static func parseCSR(_ der: [UInt8]) throws(CoordinatorError) -> CertificateSigningRequest {
        guard let csr = try? CertificateSigningRequest(derEncoded: der) else {
            throw CoordinatorError(.invalidRequest, "the CSR is not a DER certificate signing request")
        }
        guard csr.publicKey.isValidSignature(csr.signature, for: csr) else {
            throw CoordinatorError(.invalidRequest, "the CSR's signature does not verify")
        }
        _ = try requestedNames(csr)
        return csr
    }

    /// The names a marble's CSR asks for: DNS names and IP addresses only, as MarbleRun copies
    /// them. Any other kind (URI, email, otherName, directory name, …) would let an attested
    /// marble get a mesh certificate naming another service by an identity peers may check.
    static func requestedNames(_ csr: CertificateSigningRequest) throws(CoordinatorError) -> SubjectAlternativeNames {
        let names: SubjectAlternativeNames?
        do {
            names = try csr.attributes.extensionRequest?.extensions.subjectAlternativeNames
        } catch {
            throw CoordinatorError(.invalidRequest, "the CSR's subject alternative names do not parse")
        }
        for name in names ?? SubjectAlternativeNames() {
            switch name {
            case .dnsName, .ipAddress: continue
            default:
                throw CoordinatorError(
                    .invalidRequest,
                    "the CSR asks for the subject alternative name \(String(describing: name).prefix(128)); a marble certificate names DNS names and IP addresses only"
                )
            }
        }
        return names ?? SubjectAlternativeNames()
    }
}

extension PackagePolicy {
    /// The policy of a manifest package.
    init(_ package: Manifest.Package) {
        func bytes(_ hex: String?) -> [UInt8]? { hex.flatMap(Hex.decode) }
        self.init(
            debug: package.debug, uniqueID: bytes(package.uniqueID), signerID: bytes(package.signerID),
            productID: package.productID.map { UInt16(truncatingIfNeeded: $0) },
            securityVersion: package.securityVersion.map { UInt16(truncatingIfNeeded: $0) },
            acceptedTCBStatuses: (package.acceptedTCBStatuses ?? []).map(TCBStatus.init(rawValue:)),
            acceptedAdvisories: package.acceptedAdvisories ?? [])
    }
}
