import Crypto
import Foundation
import SwiftASN1
import X509

/// What the Coordinator keeps besides per-marble records: its CA, root secret, manifest and
/// shared secrets. Serialized as JSON inside the sealed "core" record.
struct CoreState: Codable, Sendable {
    struct StoredSecret: Codable, Sendable {
        var type: String
        var cert: [UInt8]
        var privateKey: [UInt8]
        var publicKey: [UInt8]

        init(type: String, cert: [UInt8], privateKey: [UInt8], publicKey: [UInt8]) {
            self.type = type
            self.cert = cert
            self.privateKey = privateKey
            self.publicKey = publicKey
        }

        init(_ value: SecretValue) {
            self.init(type: value.type, cert: value.cert, privateKey: value.privateKey, publicKey: value.publicKey)
        }

        var value: SecretValue { SecretValue(type: type, cert: cert, privateKey: privateKey, publicKey: publicKey) }
    }

    var format = 1
    var curve: String
    var rootKey: [UInt8]
    var root: [UInt8]
    var intermediateKey: [UInt8]
    var intermediate: [UInt8]
    var marbleRoot: [UInt8]
    var rootSecret: [UInt8]
    /// The manifest's exact bytes (its fingerprint is their SHA-256).
    var manifest: [UInt8]?
    var sharedSecrets: [String: StoredSecret]
    /// Values users set for UserDefined secrets (absent in states written before users existed).
    var userSecrets: [String: StoredSecret]?
    /// Package SecurityVersions raised by package updates; the manifest's bytes stay as set.
    var securityVersions: [String: UInt64]?
    /// Shared and user-defined secret values before the last update: `.Previous.Secrets`.
    var previousSecrets: [String: StoredSecret]?
    /// A full manifest update waiting for acknowledgements.
    var pendingUpdate: PendingUpdate?

    /// A proposed manifest, who must acknowledge it, and who did.
    struct PendingUpdate: Codable, Sendable, Hashable {
        var manifest: [UInt8]
        /// Users allowed to update the manifest when it was proposed, sorted.
        var users: [String]
        var required: Int
        var acknowledged: [String]

        var missingAcknowledgments: Int { max(0, required - acknowledged.count) }
        var missingUsers: [String] { users.filter { !acknowledged.contains($0) } }
    }

    init(
        pki: CoordinatorPKI, curve: CACurve, rootSecret: [UInt8], manifest: [UInt8]?,
        sharedSecrets: [String: SecretValue]
    ) throws {
        func der(_ certificate: Certificate) throws -> [UInt8] {
            var serializer = DER.Serializer()
            try serializer.serialize(certificate)
            return serializer.serializedBytes
        }
        self.curve = curve.rawValue
        rootKey = pki.rootKey.derRepresentation
        root = try der(pki.root)
        intermediateKey = pki.intermediateKey.derRepresentation
        intermediate = try der(pki.intermediate)
        marbleRoot = try der(pki.marbleRoot)
        self.rootSecret = rootSecret
        self.manifest = manifest
        self.sharedSecrets = sharedSecrets.mapValues(StoredSecret.init)
    }

    /// Stores the intermediate and marble root of `pki` (the root never changes).
    mutating func setPKI(_ pki: CoordinatorPKI) throws(CoordinatorError) {
        do {
            var intermediateDER = DER.Serializer()
            try intermediateDER.serialize(pki.intermediate)
            var marbleRootDER = DER.Serializer()
            try marbleRootDER.serialize(pki.marbleRoot)
            intermediateKey = pki.intermediateKey.derRepresentation
            intermediate = intermediateDER.serializedBytes
            marbleRoot = marbleRootDER.serializedBytes
        } catch {
            throw CoordinatorError(.internalFailure, "the renewed intermediate certificates do not serialize")
        }
    }

    var pki: CoordinatorPKI {
        get throws {
            try CoordinatorPKI(
                rootKey: SigningKey(derRepresentation: rootKey), root: Certificate(derEncoded: root),
                intermediateKey: SigningKey(derRepresentation: intermediateKey),
                intermediate: Certificate(derEncoded: intermediate),
                marbleRoot: Certificate(derEncoded: marbleRoot))
        }
    }

    var secrets: [String: SecretValue] { sharedSecrets.mapValues(\.value) }

    var previousSecretValues: [String: SecretValue] {
        get { (previousSecrets ?? [:]).mapValues(\.value) }
        set { previousSecrets = newValue.isEmpty ? nil : newValue.mapValues(StoredSecret.init) }
    }

    var userDefinedSecrets: [String: SecretValue] {
        get { (userSecrets ?? [:]).mapValues(\.value) }
        set { userSecrets = newValue.mapValues(StoredSecret.init) }
    }

    func encoded() throws(CoordinatorError) -> [UInt8] {
        do {
            return Array(try JSONEncoder().encode(self))
        } catch {
            throw CoordinatorError(.internalFailure, "encoding the state failed")
        }
    }

    static func decode(_ bytes: [UInt8]) throws(CoordinatorError) -> CoreState {
        do {
            let state = try JSONDecoder().decode(CoreState.self, from: Data(bytes))
            guard state.format == 1 else {
                throw CoordinatorError(
                    .sealedState, "the sealed state has format \(state.format); this Coordinator reads format 1")
            }
            return state
        } catch let error as CoordinatorError {
            throw error
        } catch {
            throw CoordinatorError(.sealedState, "the sealed state authenticates but does not decode: \(error)")
        }
    }
}
