import AuditLog
import Crypto
import Foundation
import Manifest
import Store
import _CryptoExtras

/// The Coordinator in recovery mode (state 1): its sealed state exists but the data key cannot
/// be unsealed on this machine. Holders of the manifest's recovery keys post their shares, each
/// signed with their key (RSA PKCS #1 v1.5 over SHA-256 of the share, as MarbleRun's CLI signs);
/// once enough shares are in, the data key is rebuilt, checked against the sealed state, sealed
/// anew for this machine, and the Coordinator can start normally.
public actor RecoveryCoordinator {
    /// Why the Coordinator is in recovery mode, for logs and the status message.
    public nonisolated let reason: String
    let store: any StateStore
    let sealer: any Sealer
    let data: RecoveryData
    let now: @Sendable () -> Date
    /// Encrypts shares in transit for clients that ask (`/recover/public-key`).
    private let ephemeralKey: _RSA.Encryption.PrivateKey
    /// Shares received so far, by recovery key name.
    private var shares: [String: [UInt8]] = [:]
    /// Recovery mode is over: the state was recovered (or, on request, discarded).
    public private(set) var isRecovered = false

    init(
        reason: String, store: any StateStore, sealer: any Sealer, data: RecoveryData,
        now: @escaping @Sendable () -> Date
    )
        throws(CoordinatorError)
    {
        self.reason = reason
        self.store = store
        self.sealer = sealer
        self.data = data
        self.now = now
        do {
            ephemeralKey = try _RSA.Encryption.PrivateKey(keySize: .bits2048)
        } catch {
            throw CoordinatorError(.internalFailure, "creating the ephemeral recovery key failed")
        }
    }

    /// Shares still needed.
    public var remaining: Int { max(0, data.needed - shares.count) }

    /// PKIX DER of an RSA key whose OAEP-SHA256 ciphertexts ``recover(secret:signature:)`` accepts
    /// in place of a share: for clients that will not send the share in the clear over TLS.
    public var ephemeralPublicKey: [UInt8] { Array(ephemeralKey.publicKey.derRepresentation) }

    /// Takes one share (or its encryption to the ephemeral key) with its owner's signature and
    /// returns how many are still needed; 0 means the state is recovered and sealed again.
    public func recover(secret: [UInt8], signature: [UInt8]) async throws(CoordinatorError) -> Int {
        guard !isRecovered else {
            throw CoordinatorError(.wrongState, "the Coordinator is already recovered; restart is in progress")
        }
        var share = secret
        if share.count != data.shareLength {
            guard let decrypted = try? ephemeralKey.decrypt(secret, padding: .PKCS1_OAEP_SHA256) else {
                throw CoordinatorError(
                    .invalidRequest,
                    "the recovery secret is neither a \(data.shareLength)-byte share nor one encrypted to the ephemeral recovery key"
                )
            }
            share = Array(decrypted)
        }
        guard share.count == data.shareLength else {
            throw CoordinatorError(.invalidRequest, "the recovery secret must be \(data.shareLength) bytes")
        }
        guard let owner = owner(of: share, signature: signature) else {
            throw CoordinatorError(
                .forbidden,
                "the recovery secret's signature does not verify with any of the manifest's recovery keys")
        }
        shares[owner] = share
        guard remaining == 0 else { return remaining }

        let candidate = try reconstruct()
        do {
            try await seal(candidate, recoveredBy: shares.keys.sorted())
        } catch {
            // A wrong share, even a validly signed one, must not stay and block the next attempt.
            shares = [:]
            throw error
        }
        shares = [:]
        isRecovered = true
        return 0
    }

    /// Deletes the sealed state for good, so that a new manifest can start a new one: only on a
    /// user's explicit request. Returns once the deletion is durable; the caller sets up the new
    /// state and then ends recovery mode with ``finish()``.
    public func discardState() async throws(CoordinatorError) {
        guard !isRecovered else {
            throw CoordinatorError(.wrongState, "the Coordinator is already recovered; restart is in progress")
        }
        do {
            var writes: [StoreWrite] = []
            for key in try await store.keys(withPrefix: SealedStore.indexedPrefix)
                + store.keys(withPrefix: SealedStore.writeOncePrefix)
                + store.keys(withPrefix: Coordinator.replicaKeyPrefix)
                + [SealedStore.sealedDataKeyName, RecoveryData.storeKey]
            {
                if let value = try await store.read(key) {
                    writes.append(StoreWrite(key: key, value: nil, expectedVersion: value.version))
                }
            }
            try await store.commit(writes)
        } catch {
            throw CoordinatorError(.storeUnavailable, "discarding the sealed state failed: \(error.message)")
        }
    }

    /// Ends recovery mode after ``discardState()`` and whatever replaced the state.
    public func finish() { isRecovered = true }

    /// The recovery key whose signature over SHA-256 of `share` `signature` is.
    private func owner(of share: [UInt8], signature: [UInt8]) -> String? {
        let rsaSignature = _RSA.Signing.RSASignature(rawRepresentation: signature)
        for (name, der) in data.keys.sorted(by: { $0.key < $1.key }) {
            guard let key = try? _RSA.Signing.PublicKey(derRepresentation: der) else { continue }
            if key.isValidSignature(rsaSignature, for: share, padding: .insecurePKCS1v1_5) { return name }
        }
        return nil
    }

    private func reconstruct() throws(CoordinatorError) -> [UInt8] {
        let collected = shares.sorted { $0.key < $1.key }.map(\.value)
        switch data.mode {
        case .single:
            return collected[0]
        case .xor:
            return collected.dropFirst().reduce(collected[0]) { RecoveryData.xor($0, $1) }
        case .shamir:
            do {
                return try Shamir.combine(collected)
            } catch {
                throw CoordinatorError(.invalidRequest, "the shares do not combine: \(error.description)")
            }
        }
    }

    /// Checks the rebuilt key against the recovery data and the sealed state, then seals it for
    /// this machine and logs the recovery, in one commit.
    private func seal(_ dataKey: [UInt8], recoveredBy names: [String]) async throws(CoordinatorError) {
        let refusal = CoordinatorError(
            .invalidRequest,
            "the shares do not rebuild this Coordinator's data key (a wrong or stale share?); post them again")
        guard dataKey.count == 32, data.isAuthentic(dataKey: dataKey) else { throw refusal }
        let sealed = SealedStore(store: store, dataKey: dataKey)
        guard let record = try? await sealed.read("core"), let core = try? CoreState.decode(record.bytes),
            let pki = try? core.pki
        else { throw refusal }
        let current: StoredValue?
        do {
            current = try await store.read(SealedStore.sealedDataKeyName)
        } catch {
            throw CoordinatorError(.storeUnavailable, "the state store failed: \(error.message)")
        }
        let trail = try await AuditTrail.load(from: sealed)
        let (logWrites, _) = try trail.appending(
            [
                AuditTrail.Event(
                    AuditEvent.recovered, user: nil, details: ["recoveryKeys": names.joined(separator: ",")])
            ],
            at: now(), signedBy: pki.rootKey, in: sealed)
        // Sealed in the recovered manifest's mode; with sealing disabled, the next start recovers again.
        let mode = SealMode(core.manifest.flatMap { ManifestDocument.parse($0, options: ManifestOptions()).manifest })
        let keyWrites =
            mode == .disabled
            ? []
            : [
                StoreWrite(
                    key: SealedStore.sealedDataKeyName,
                    value: try SealedKeyRecord.seal(dataKey, mode: mode, with: sealer),
                    expectedVersion: current?.version)
            ]
        try await sealed.commit(keyWrites + logWrites)
    }
}
