import Manifest

/// What the data key is sealed with, as the manifest's `Config.SealMode` says (MarbleRun's
/// meaning): the enclave signer's key by default, so an upgrade (same signer, higher SVN) can
/// unseal; the enclave's own key; or not at all, so every start needs recovery (or a running
/// replica to hand the key over).
public enum SealMode: String, Sendable, Hashable, CaseIterable {
    case productKey = "ProductKey"
    case uniqueKey = "UniqueKey"
    case disabled = "Disabled"

    /// The manifest's mode; the default (`ProductKey`) before a manifest is set or when it names none.
    public init(_ manifest: Manifest?) {
        self = manifest.flatMap { SealMode(rawValue: $0.config.sealMode) } ?? .productKey
    }

    var tag: UInt8 {
        switch self {
        case .productKey: return 1
        case .uniqueKey: return 2
        case .disabled: return 3
        }
    }
}

/// The stored form of the sealed data key: a format byte, the seal mode, then what the sealer
/// made (nothing for `Disabled`).
struct SealedKeyRecord: Sendable, Hashable {
    static let format: UInt8 = 1

    var mode: SealMode
    var sealed: [UInt8]

    func encoded() -> [UInt8] { [Self.format, mode.tag] + sealed }

    static func decode(_ bytes: [UInt8]) throws(CoordinatorError) -> SealedKeyRecord {
        guard bytes.count >= 2, bytes[0] == format, let mode = SealMode.allCases.first(where: { $0.tag == bytes[1] })
        else {
            throw CoordinatorError(
                .sealedState,
                "the sealed data key record is malformed or from an earlier development build; start with a new seal directory"
            )
        }
        guard (mode == .disabled) == (bytes.count == 2) else {
            throw CoordinatorError(.sealedState, "the sealed data key record is malformed")
        }
        return SealedKeyRecord(mode: mode, sealed: Array(bytes[2...]))
    }

    /// `dataKey` sealed by `sealer` in `mode`.
    static func seal(_ dataKey: [UInt8], mode: SealMode, with sealer: any Sealer) throws(CoordinatorError) -> [UInt8] {
        SealedKeyRecord(mode: mode, sealed: mode == .disabled ? [] : try sealer.seal(dataKey, mode: mode)).encoded()
    }

    /// The data key in `bytes`, unsealed by `sealer`.
    static func unseal(_ bytes: [UInt8], with sealer: any Sealer) throws(CoordinatorError) -> [UInt8] {
        let record = try decode(bytes)
        guard record.mode != .disabled else {
            throw CoordinatorError(
                .sealedState,
                "the manifest disables sealing (SealMode Disabled): the data key is not kept on this machine")
        }
        return try sealer.unseal(record.sealed, mode: record.mode)
    }
}
