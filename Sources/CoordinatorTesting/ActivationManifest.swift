import Attestation
import Foundation

/// A manifest for activation tests: one package signed by `signerID` (ProductID 1, SVN 2), a
/// `backend` marble with files, env and argv from templates, shared and per-marble secrets,
/// a user-defined secret and a TLS tag; and a `probe` marble (same package, nothing else) by
/// which tests tell a known UUID: one activated as `backend` is refused as `probe`.
public enum ActivationManifest {
    /// The `backend` enclave the manifest accepts: signed by the platform's default signer,
    /// ProductID 1, SecurityVersion 2.
    public static func enclave(on platform: SimulatedPlatform) -> SimulatedEnclave {
        SimulatedEnclave(
            uniqueID: [UInt8](repeating: 0x42, count: 32), signerID: platform.defaultSigner.signerID, productID: 1,
            securityVersion: 2)
    }

    public static func bytes(signerID: [UInt8], maxActivations: Int = 2, debug: Bool = false) -> [UInt8] {
        let signer = Hex.encode(signerID)
        return Array(
            """
            {
              "Packages": {"backend": {"SignerID": "\(signer)", "ProductID": 1, "SecurityVersion": 2, "Debug": \(debug)}},
              "Marbles": {
                "backend": {
                  "Package": "backend", "MaxActivations": \(maxActivations),
                  "Parameters": {
                    "Files": {"/etc/cert.pem": "{{ pem .Secrets.sharedCert.Cert }}", "/etc/root.pem": "{{ pem .MarbleRun.RootCA.Cert }}"},
                    "Env": {"SHARED_KEY": "{{ hex .Secrets.sharedKey }}", "OWN_KEY": "{{ hex .Secrets.ownKey }}", "GREETING": "hi"},
                    "Argv": ["backend", "--serve"]
                  },
                  "TLS": ["web"]
                },
                "probe": {"Package": "backend"}
              },
              "Secrets": {
                "sharedKey": {"Type": "symmetric-key", "Size": 256, "Shared": true},
                "ownKey": {"Type": "symmetric-key", "Size": 128},
                "sharedCert": {"Type": "cert-ecdsa", "Size": 256, "Shared": true, "Cert": {"Subject": {"CommonName": "shared"}, "DNSNames": ["shared.example"]}},
                "userKey": {"Type": "plain", "UserDefined": true}
              },
              "TLS": {"web": {"Outgoing": [{"Addr": "db", "Port": "5432"}], "Incoming": [{"Port": "8443"}]}}
            }
            """.utf8)
    }
}
