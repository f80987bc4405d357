import Crypto
import Foundation
import Store

/// Replicas on one store: the state is read again whenever another Coordinator changed it.
extension Coordinator {
    /// For replicas on one store: when another Coordinator changed the state since this one
    /// last read it, reload it (manifest, CA, secrets, log head), so no answer comes from a
    /// stale copy. A no-op unless ``Configuration/sharedStore`` is set.
    public func synchronize() async throws(CoordinatorError) {
        guard configuration.sharedStore else { return }
        // One read of the index: it lists the core record's version, and every record read after
        // it is checked against what it lists, also records another replica wrote.
        if try await sealed.refreshIndex(), sealed.index.version(of: sealed.storageName("core")) == coreVersion {
            return
        }
        try await reload()
    }

    /// Reads the whole state again; a state re-encrypted by another replica (new data key) is
    /// opened with the newly sealed key.
    func reload() async throws(CoordinatorError) {
        var current = sealed
        // No index under the current data key: another replica moved the state to a new one.
        if try await !current.refreshIndex() {
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
        }
        try await current.verifyRecords()
        guard let record = try await current.read("core") else {
            throw CoordinatorError(.sealedState, "the Coordinator state disappeared from the store")
        }
        let loaded = try await Loaded(record, from: current, configuration: configuration)
        // Concurrent requests may reload the same new state twice: only a different one is a new
        // epoch (an activation checked under the first reload is still valid after the second).
        if record.version != coreVersion || current.dataKeyBytes != sealed.dataKeyBytes { stateEpoch += 1 }
        sealed = current
        core = loaded.core
        coreVersion = record.version
        pki = loaded.pki
        document = loaded.document
        trail = loaded.trail
        rootSecret = SymmetricKey(data: loaded.core.rootSecret)
        sharedSecrets = loaded.core.secrets
        state = loaded.document == nil ? .acceptingManifest : .acceptingMarbles
        cachedIssuer = nil
    }
}
