import CoordinatorTesting
import Foundation
import Manifest

/// A manifest that uses every section and passes every rule, which each rule test breaks (or
/// varies) in one place.
enum RuleFixture {
    static let hexA = String(repeating: "1f", count: 32)
    static let hexB = String(repeating: "a0", count: 32)

    struct Keys: Sendable {
        var alice: String
        var bob: String
        var carol: String
        var weakUser: String
        var rsaUser: String
        var recovery: [String]
        var weakRecovery: String
    }

    /// Generated once: RSA key generation is the slow part.
    static let keys: Keys = {
        try! Keys(
            alice: TestCertificates.ecdsa(commonName: "alice"),
            bob: TestCertificates.ecdsa(commonName: "bob"),
            carol: TestCertificates.ecdsa(commonName: "carol"),
            weakUser: TestCertificates.rsa(commonName: "weak", bits: 1024),
            rsaUser: TestCertificates.rsa(commonName: "rsa", bits: 2048),
            recovery: (0..<3).map { _ in try TestCertificates.rsaPublicKey(bits: 2048) },
            weakRecovery: TestCertificates.rsaPublicKey(bits: 1024))
    }()

    static func base() -> [String: Any] {
        [
            "Packages": [
                "backend": ["SignerID": hexA, "ProductID": 45, "SecurityVersion": 2, "Debug": false],
                "frontend": ["UniqueID": hexB],
            ],
            "Marbles": [
                "backend": [
                    "Package": "backend",
                    "MaxActivations": 1,
                    "Parameters": [
                        "Files": [
                            "/tmp/key": "{{ raw .Secrets.key }}",
                            "/tmp/cert.pem": "{{ pem .Secrets.cert.Cert }}\n{{ pem .Secrets.cert.Private }}",
                            "/tmp/root.pem": "{{ pem .MarbleRun.RootCA.Cert }}",
                        ],
                        "Env": [
                            "KEY": "{{ hex .Secrets.key }}",
                            "API": "{{ string .Secrets.apiKey }}",
                            "PLAIN": ["Data": "aGVsbG8=", "Encoding": "base64"],
                        ],
                        "Argv": ["backend", "serve"],
                    ],
                    "TLS": ["web"],
                ],
                "frontend": ["Package": "frontend"],
            ],
            "Secrets": [
                "key": ["Type": "symmetric-key", "Size": 256, "Shared": true],
                "perMarble": ["Type": "symmetric-key", "Size": 128],
                "cert": [
                    "Type": "cert-ecdsa", "Size": 256, "Shared": true, "ValidFor": 7,
                    "Cert": [
                        "Subject": ["CommonName": "backend"], "DNSNames": ["localhost"], "IPAddresses": ["127.0.0.1"],
                    ],
                ],
                "edCert": ["Type": "cert-ed25519"],
                "rsaCert": ["Type": "cert-rsa", "Size": 2048],
                "apiKey": ["Type": "plain", "UserDefined": true],
                "userCert": ["Type": "cert-rsa", "UserDefined": true],
            ],
            "Users": [
                "alice": ["Certificate": keys.alice, "Roles": ["reader", "updater", "manifest"]],
                "bob": ["Certificate": keys.bob, "Roles": ["writer"]],
            ],
            "Roles": [
                "reader": ["ResourceType": "Secrets", "ResourceNames": ["key", "apiKey"], "Actions": ["ReadSecret"]],
                "writer": [
                    "ResourceType": "Secrets", "ResourceNames": ["apiKey", "userCert"], "Actions": ["WriteSecret"],
                ],
                "updater": [
                    "ResourceType": "Packages", "ResourceNames": ["backend"], "Actions": ["UpdateSecurityVersion"],
                ],
                "manifest": ["ResourceType": "Manifest", "Actions": ["UpdateManifest"]],
            ],
            "TLS": [
                "web": [
                    "Outgoing": [["Addr": "service.name", "Port": "8080"]],
                    "Incoming": [["Port": "8443"], ["Port": "9443", "Cert": "cert", "DisableClientAuth": true]],
                ]
            ],
            "RecoveryKeys": ["r1": keys.recovery[0], "r2": keys.recovery[1], "r3": keys.recovery[2]],
            "Config": [
                "SealMode": "ProductKey", "FeatureGates": ["SignQuoteEndpoint"], "UpdateThreshold": 1,
                "RecoveryThreshold": 2,
            ],
        ]
    }

    static func bytes(_ object: [String: Any]) -> [UInt8] {
        Array(try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
    }

    static func parse(_ object: [String: Any], strict: Bool = false) -> ManifestDocument {
        ManifestDocument.parse(bytes(object), options: ManifestOptions(strict: strict))
    }
}

extension Dictionary where Key == String, Value == Any {
    /// Sets (or with nil removes) the value at a dotted path of object keys.
    mutating func set(_ path: [String], _ value: Any?) {
        guard let first = path.first else { return }
        if path.count == 1 {
            self[first] = value
            return
        }
        var child = self[first] as? [String: Any] ?? [:]
        child.set(Array(path.dropFirst()), value)
        self[first] = child
    }
}
