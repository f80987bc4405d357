import Attestation
import Crypto
import Foundation
import X509

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
/// `greeting` (env `GREETING` of the marble) tells versions of the manifest apart.
public enum UserManifest {
    public static let userDefinedSecrets = ["userKey", "userCert", "userPlain"]

    public static func bytes(
        signerID: [UInt8], admin: TestUser, reader: TestUser, writer: TestUser, updaters: [TestUser] = [],
        updateThreshold: Int = 0, greeting: String = "hello"
    ) -> [UInt8] {
        func pem(_ user: TestUser) -> String {
            user.certificatePEM.replacingOccurrences(of: "\n", with: "\\n")
        }
        let signer = Hex.encode(signerID)
        let updaterUsers = updaters.map {
            #", "\#($0.name)": {"Certificate": "\#(pem($0))", "Roles": ["manifestUpdater"]}"#
        }.joined()
        return Array(
            """
            {
              "Packages": {"backend": {"SignerID": "\(signer)", "ProductID": 1, "SecurityVersion": 2}},
              "Marbles": {
                "backend": {
                  "Package": "backend",
                  "Parameters": {
                    "Files": {"/etc/user-key": "{{ hex .Secrets.userKey }}", "/etc/user-cert.pem": "{{ pem .Secrets.userCert.Cert }}"},
                    "Env": {"SHARED_KEY": "{{ hex .Secrets.sharedKey }}", "OWN_KEY": "{{ hex .Secrets.ownKey }}", "GREETING": "\(greeting)", "PREVIOUS_KEY": "{{ hex .Previous.Secrets.userKey }}"}
                  }
                }
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
              "Config": {"UpdateThreshold": \(updateThreshold)}
            }
            """.utf8)
    }
}
