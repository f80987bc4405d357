import Crypto
import Foundation

/// Seals the Coordinator's data key to this machine: an enclave seals it with the sealing key
/// the mode names (``GramineSealer``); the simulation sealers have one key for every mode and say so.
public protocol Sealer: Sendable {
    /// How the key is protected, for start-up logs ("SGX product key", "INSECURE simulation key file").
    var description: String { get }
    /// `dataKey` sealed in `mode` (never ``SealMode/disabled``: nothing is sealed then).
    func seal(_ dataKey: [UInt8], mode: SealMode) throws(CoordinatorError) -> [UInt8]
    func unseal(_ sealed: [UInt8], mode: SealMode) throws(CoordinatorError) -> [UInt8]
}

/// Simulation: the data key is sealed with AES-256-GCM under a key kept in a file of the seal
/// directory (mode 0600, named INSECURE). Whoever reads that file can unseal the state.
public struct SimulationSealer: Sealer {
    public static let fileName = "simulation-sealing-key.INSECURE"
    static let associatedData = Array("marblerun-swift sealed data key v1".utf8)

    public let keyFile: URL
    private let key: SymmetricKey

    public var description: String { "INSECURE simulation sealing key file \(keyFile.path)" }

    /// Uses the key file in `directory`, creating the directory and a new key if absent.
    public init(directory: URL) throws(CoordinatorError) {
        keyFile = directory.appendingPathComponent(Self.fileName)
        let manager = FileManager.default
        do {
            try manager.createDirectory(
                at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            if let data = manager.contents(atPath: keyFile.path) {
                guard data.count == 32 else {
                    throw CoordinatorError(.sealedState, "\(keyFile.path) is not a 32-byte sealing key")
                }
                key = SymmetricKey(data: data)
            } else {
                let fresh = SymmetricKey(size: .bits256)
                let bytes = fresh.withUnsafeBytes { Data($0) }
                guard manager.createFile(atPath: keyFile.path, contents: bytes, attributes: [.posixPermissions: 0o600])
                else {
                    throw CoordinatorError(.sealedState, "cannot create the sealing key file \(keyFile.path)")
                }
                key = fresh
            }
        } catch let error as CoordinatorError {
            throw error
        } catch {
            throw CoordinatorError(
                .sealedState, "cannot use the seal directory \(directory.path): \(error.localizedDescription)")
        }
    }

    public func seal(_ dataKey: [UInt8], mode: SealMode) throws(CoordinatorError) -> [UInt8] {
        do {
            return Array(try AES.GCM.seal(dataKey, using: key, authenticating: Self.associatedData).combined!)
        } catch {
            throw CoordinatorError(.sealedState, "sealing the data key failed")
        }
    }

    public func unseal(_ sealed: [UInt8], mode: SealMode) throws(CoordinatorError) -> [UInt8] {
        do {
            return Array(
                try AES.GCM.open(AES.GCM.SealedBox(combined: sealed), using: key, authenticating: Self.associatedData))
        } catch {
            throw CoordinatorError(
                .sealedState,
                "cannot unseal the data key with \(description): it was sealed with another key, or it was changed")
        }
    }
}

/// A sealer whose key lives only in memory: for tests and throwaway Coordinators.
public struct EphemeralSealer: Sealer {
    private let key = SymmetricKey(size: .bits256)

    public init() {}

    public var description: String { "in-memory key (state is lost with the process)" }

    public func seal(_ dataKey: [UInt8], mode: SealMode) throws(CoordinatorError) -> [UInt8] {
        do {
            return Array(try AES.GCM.seal(dataKey, using: key).combined!)
        } catch {
            throw CoordinatorError(.sealedState, "sealing the data key failed")
        }
    }

    public func unseal(_ sealed: [UInt8], mode: SealMode) throws(CoordinatorError) -> [UInt8] {
        do {
            return Array(try AES.GCM.open(AES.GCM.SealedBox(combined: sealed), using: key))
        } catch {
            throw CoordinatorError(.sealedState, "cannot unseal the data key with \(description)")
        }
    }
}
