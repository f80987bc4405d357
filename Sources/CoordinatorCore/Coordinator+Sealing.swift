import Manifest
import Store

/// Sealing the data key as the manifest's seal mode says.
extension Coordinator {
    /// The writes that seal `dataKey` in `mode` as the state's key record, and drop the
    /// replicas' sealed copies (a replica then obtains the key from a running one and seals its
    /// copy the same way).
    func sealedKeyWrites(_ dataKey: [UInt8], mode: SealMode) async throws(CoordinatorError) -> [StoreWrite] {
        try await sealedKeyWrites(dataKey, mode: mode, replacing: try await currentSealedKey())
    }

    private func sealedKeyWrites(_ dataKey: [UInt8], mode: SealMode, replacing current: StoredValue?)
        async throws(CoordinatorError) -> [StoreWrite]
    {
        do {
            var writes = [
                StoreWrite(
                    key: SealedStore.sealedDataKeyName,
                    value: try SealedKeyRecord.seal(dataKey, mode: mode, with: sealer),
                    expectedVersion: current?.version)
            ]
            for name in try await sealed.store.keys(withPrefix: Self.replicaKeyPrefix) {
                if let copy = try await sealed.store.read(name) {
                    writes.append(StoreWrite(key: name, value: nil, expectedVersion: copy.version))
                }
            }
            return writes
        } catch let error as CoordinatorError {
            throw error
        } catch {
            throw CoordinatorError(.storeUnavailable, "the state store failed: \(error)")
        }
    }

    /// ``sealedKeyWrites(_:mode:)`` for `manifest`'s seal mode when the key is sealed in another
    /// mode now; nothing when the mode is unchanged.
    func resealWrites(for manifest: Manifest) async throws(CoordinatorError) -> [StoreWrite] {
        let mode = SealMode(manifest)
        guard let current = try await currentSealedKey(), try SealedKeyRecord.decode(current.bytes).mode != mode
        else { return [] }
        return try await sealedKeyWrites(sealed.dataKeyBytes, mode: mode, replacing: current)
    }

    private func currentSealedKey() async throws(CoordinatorError) -> StoredValue? {
        do {
            return try await sealed.store.read(SealedStore.sealedDataKeyName)
        } catch {
            throw CoordinatorError(.storeUnavailable, "the state store failed: \(error.message)")
        }
    }
}
