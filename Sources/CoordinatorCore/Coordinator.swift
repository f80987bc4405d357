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
    public internal(set) var state: State
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
    var prepared: [SHA256Digest: PreparedCollateral] = [:]
    /// Activations waiting for the next group commit (``Coordinator/countActivation(of:uuidRecord:limit:epoch:)``).
    var pendingCounts: [PendingCount] = []
    var isCommittingCounts = false
    /// Rebuilt whenever the PKI or the shared secrets change (set to nil there).
    var cachedIssuer: ParameterIssuer?
    /// The parameter plans of the manifest with this fingerprint (``ParameterPlan/plans(for:)``).
    var cachedPlans: (fingerprint: String, plans: [String: Result<ParameterPlan, CoordinatorError>])?

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
        try await sealed.verifyRecords()
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
            return try SealedKeyRecord.unseal(sealedKey.bytes, with: sealer)
        } catch {
            firstFailure = error
        }
        let copies: [String]
        do {
            copies = try await store.keys(withPrefix: replicaKeyPrefix)
            for name in copies {
                if let copy = try await store.read(name),
                    let key = try? SealedKeyRecord.unseal(copy.bytes, with: sealer)
                {
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
        // The copy is sealed as the main record is; with sealing disabled there is none.
        let mode = (try? SealedKeyRecord.decode(sealedKey.bytes))?.mode ?? .productKey
        if mode == .disabled { return key }
        let name = replicaKeyPrefix + Hex.encode(SymmetricKey(size: .bits128).withUnsafeBytes { Array($0) })
        let sealedCopy = try SealedKeyRecord.seal(key, mode: mode, with: sealer)
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

    private static func create(
        configuration: Configuration, verifier: QuoteVerifier, collateralProvider: any CollateralProvider,
        store: any StateStore, sealer: any Sealer, dataKeySource: DataKeySource?
    ) async throws(CoordinatorError) -> Coordinator {
        let dataKey = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        let sealed = SealedStore(store: store, dataKey: dataKey)
        let core: CoreState
        let pki: CoordinatorPKI
        do {
            for prefix in SealedStore.recordPrefixes where !(try await store.keys(withPrefix: prefix)).isEmpty {
                // A replica started at the same moment committed its state after our first read: open that.
                if try await store.read(SealedStore.sealedDataKeyName) != nil {
                    throw CoordinatorError(.conflict, "another replica created the state first")
                }
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
            StoreWrite(
                key: SealedStore.sealedDataKeyName,
                value: try SealedKeyRecord.seal(dataKey, mode: .productKey, with: sealer), expectedVersion: nil),
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

    /// `name` is a marble type of the manifest (a dictionary lookup: the mesh API asks on every activation).
    public func isMarbleType(_ name: String) -> Bool { document?.manifest?.marbles[name] != nil }

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
        let sealWrites = try await resealWrites(for: manifest)
        try await commit(
            newCore, basedOn: epoch,
            events: [
                AuditTrail.Event(
                    AuditEvent.manifestSet, user: nil, details: ["manifestFingerprint": document.fingerprint])
            ], also: recoveryWrites + sealWrites)
        self.document = document
        sharedSecrets = secrets
        cachedIssuer = nil
        state = .acceptingMarbles
        return ManifestResult(warnings: document.warnings, recoverySecrets: recoverySecrets)
    }
}
