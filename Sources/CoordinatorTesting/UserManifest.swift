import Attestation
import Crypto
import Foundation
import X509
import _CryptoExtras

/// A manifest user for tests: a P-256 key and a self-signed client certificate.
public struct TestUser: Sendable {
    public let name: String
    public let key: P256.Signing.PrivateKey
    public let certificate: Certificate

    public init(name: String) throws {
        self.name = name
        key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName { CommonName(name) }
        certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: Date() - 60,
            notValidAfter: Date() + 86_400, issuer: subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: Certificate.Extensions {}, issuerPrivateKey: .init(key))
    }

    public var certificatePEM: String { (try? certificate.serializeAsPEM().pemString) ?? "" }
    public var certificateDER: [UInt8] { (try? certificate.serializeAsPEM().derBytes) ?? [] }
    public var keyPEM: String { key.pemRepresentation }
}

/// The activation test manifest plus users, roles and user-defined secrets, for the users,
/// secrets and update tests (issue 5):
/// - `admin`: reads and writes every user-defined secret, updates package `backend`, updates the manifest;
/// - `reader`: reads `sharedKey` and `userKey`;
/// - `writer`: writes `userKey`;
/// - each of `updaters`: updates the manifest (with `admin`, `updateThreshold` of them must agree).
///
/// `greeting` (env `GREETING` of the marble) tells versions of the manifest apart. Marble type
/// `probe` (same package, no parameters, at most `probeMaxActivations`, 0: no limit) tells whether a UUID is known: a UUID
/// activated as `backend` is refused as `probe`.
public enum UserManifest {
    public static let userDefinedSecrets = ["userKey", "userCert", "userPlain"]

    public static func bytes(
        signerID: [UInt8], admin: TestUser, reader: TestUser, writer: TestUser, updaters: [TestUser] = [],
        updateThreshold: Int = 0, greeting: String = "hello", recoveryKeys: [any ManifestRecoveryKey] = [],
        recoveryThreshold: Int = 0, featureGates: [String] = [], maxActivations: Int = 0,
        probeMaxActivations: Int = 0
    ) -> [UInt8] {
        func pem(_ user: TestUser) -> String {
            user.certificatePEM.replacingOccurrences(of: "\n", with: "\\n")
        }
        let signer = Hex.encode(signerID)
        let updaterUsers = updaters.map {
            #", "\#($0.name)": {"Certificate": "\#(pem($0))", "Roles": ["manifestUpdater"]}"#
        }.joined()
        let recovery = recoveryKeys.map {
            #""\#($0.name)": "\#($0.publicKeyPEM.replacingOccurrences(of: "\n", with: "\\n"))""#
        }.joined(separator: ", ")
        return Array(
            """
            {
              "Packages": {"backend": {"SignerID": "\(signer)", "ProductID": 1, "SecurityVersion": 2}},
              "Marbles": {
                "backend": {
                  "Package": "backend", "MaxActivations": \(maxActivations),
                  "Parameters": {
                    "Files": {"/etc/user-key": "{{ hex .Secrets.userKey }}", "/etc/user-cert.pem": "{{ pem .Secrets.userCert.Cert }}"},
                    "Env": {"SHARED_KEY": "{{ hex .Secrets.sharedKey }}", "OWN_KEY": "{{ hex .Secrets.ownKey }}", "GREETING": "\(greeting)", "PREVIOUS_KEY": "{{ hex .Previous.Secrets.userKey }}"}
                  }
                },
                "probe": {"Package": "backend", "MaxActivations": \(probeMaxActivations)}
              },
              "Secrets": {
                "sharedKey": {"Type": "symmetric-key", "Size": 256, "Shared": true},
                "ownKey": {"Type": "symmetric-key", "Size": 128},
                "userKey": {"Type": "symmetric-key", "Size": 128, "UserDefined": true},
                "userCert": {"Type": "cert-ecdsa", "Size": 256, "UserDefined": true},
                "userPlain": {"Type": "plain", "UserDefined": true}
              },
              "Users": {
                "admin": {"Certificate": "\(pem(admin))", "Roles": ["secretAdmin", "packageUpdater", "manifestUpdater"]},
                "reader": {"Certificate": "\(pem(reader))", "Roles": ["sharedReader"]},
                "writer": {"Certificate": "\(pem(writer))", "Roles": ["keyWriter"]}\(updaterUsers)
              },
              "Roles": {
                "secretAdmin": {"ResourceType": "Secrets", "ResourceNames": ["userKey", "userCert", "userPlain"], "Actions": ["ReadSecret", "WriteSecret"]},
                "packageUpdater": {"ResourceType": "Packages", "ResourceNames": ["backend"], "Actions": ["UpdateSecurityVersion"]},
                "manifestUpdater": {"ResourceType": "Manifest", "Actions": ["UpdateManifest"]},
                "sharedReader": {"ResourceType": "Secrets", "ResourceNames": ["sharedKey", "userKey"], "Actions": ["readsecret"]},
                "keyWriter": {"ResourceType": "Secrets", "ResourceNames": ["userKey"], "Actions": ["WriteSecret"]}
              },
              "RecoveryKeys": {\(recovery)},
              "Config": {"UpdateThreshold": \(updateThreshold), "RecoveryThreshold": \(recoveryThreshold), "FeatureGates": [\(featureGates.map { "\"\($0)\"" }.joined(separator: ", "))]}
            }
            """.utf8)
    }
}

/// An entry of a manifest's `RecoveryKeys`: the holder's name and the public half of their key.
public protocol ManifestRecoveryKey: Sendable {
    var name: String { get }
    var publicKeyPEM: String { get }
}

/// A recovery key whose private half is elsewhere (in a token): only what the manifest lists.
public struct RecoveryPublicKey: ManifestRecoveryKey {
    public let name: String
    public let publicKeyPEM: String

    public init(name: String, publicKeyPEM: String) {
        self.name = name
        self.publicKeyPEM = publicKeyPEM
    }
}

/// A recovery key holder for tests: an RSA key pair whose public half goes into the manifest's
/// `RecoveryKeys`; it decrypts its recovery secret and signs it as MarbleRun's CLI does.
public struct TestRecoveryKey: ManifestRecoveryKey {
    public let name: String
    /// The private key, DER (the key types of _CryptoExtras are not Sendable).
    public let keyDER: [UInt8]
    public let publicKeyPEM: String

    public init(name: String) throws {
        self.name = name
        let key = try _RSA.Encryption.PrivateKey(keySize: .bits2048)
        keyDER = Array(key.derRepresentation)
        publicKeyPEM = key.publicKey.pemRepresentation
    }

    /// The key as PEM (`-----BEGIN RSA PRIVATE KEY-----`), for tools that read files.
    public var privateKeyPEM: String {
        (try? _RSA.Encryption.PrivateKey(derRepresentation: keyDER).pemRepresentation) ?? ""
    }

    /// The share from the `RecoverySecrets` entry (RSA-OAEP-SHA256).
    public func decrypt(_ secret: [UInt8]) throws -> [UInt8] {
        Array(try _RSA.Encryption.PrivateKey(derRepresentation: keyDER).decrypt(secret, padding: .PKCS1_OAEP_SHA256))
    }

    /// RSA PKCS #1 v1.5 signature over SHA-256 of `share`.
    public func sign(_ share: [UInt8]) throws -> [UInt8] {
        let signing = try _RSA.Signing.PrivateKey(derRepresentation: keyDER)
        return Array(try signing.signature(for: share, padding: .insecurePKCS1v1_5).rawRepresentation)
    }
}
