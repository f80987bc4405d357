import Attestation
import AuditLog
import CoordinatorCore
import CoordinatorServer
import CoordinatorTesting
import Crypto
import Foundation
import Manifest
import MeshAPI
import Store
import SwiftASN1
import SwiftProtobuf
import X509

/// Every client API request body, through the decoding the routes use; user secrets then
/// checked against a definition of each secret type, as `POST /api/v2/secrets` does.
struct ClientBodyHarness: FuzzHarness {
    static let name = "client-body"
    static let surface =
        "client API request bodies (every POST route's decoding) and user secrets against their definitions"
    static let definitions: [(String, Manifest.Secret)] = [
        "symmetric-key", "cert-ecdsa", "cert-rsa", "cert-ed25519", "plain",
    ].map {
        var secret = Manifest.Secret()
        secret.type = $0
        secret.size = $0 == "symmetric-key" ? 128 : nil
        return ($0, secret)
    }
    init() {}

    static func seeds() throws -> [(name: String, bytes: [UInt8])] {
        func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }
        let manifest = ActivationManifest.bytes(signerID: [UInt8](repeating: 7, count: 32))
        let key = P256.Signing.PrivateKey()
        let pem = try TestCertificates.ecdsa(commonName: "user", key: key)
        let certificate = try PEMDocument(pemString: pem).derBytes
        let quote = try TestData.bytes("dcap/dcap-qvl/sgx_quote")
        let bodies: [(String, String)] = [
            ("manifest", #"{"manifest":"\#(base64(manifest))"}"#),
            ("overwrite", #"{"Manifest":"\#(base64(manifest))","overwriteSealedState":true}"#),
            (
                "secrets v2",
                #"{"secrets":{"plain":{"Key":"aGk="},"key":{"Key":"\#(base64([UInt8](repeating: 1, count: 16)))"}}}"#
            ),
            (
                "secrets certificate",
                #"{"secrets":{"cert":{"Cert":"\#(base64(certificate))","Private":"\#(base64(Array(key.derRepresentation)))"}}}"#
            ),
            (
                "secrets PEM",
                #"{"cert":{"Cert":\#(String(decoding: try JSONEncoder().encode(pem), as: UTF8.self)),"Private":null}}"#
            ),
            ("sign-quote", #"{"sgxQuote":"\#(base64(quote))"}"#),
            ("monotonic-counter", #"{"name":"counter","value":18446744073709551615}"#),
            (
                "recover",
                #"{"recoverySecret":"\#(base64([UInt8](repeating: 2, count: 256)))","recoverySecretSignature":"AAAA"}"#
            ),
            ("replica key", #"{"quote":"\#(base64(quote))","nonce":"\#(base64([UInt8](repeating: 3, count: 16)))"}"#),
        ]
        return bodies.map { ($0.0, Array($0.1.utf8)) }
    }

    func run(_ input: [UInt8]) -> Bool {
        var accepted = [
            (try? ClientRequestBodies.manifest(input)) != nil,
            (try? ClientRequestBodies.overwritingManifest(input)) != nil,
            (try? ClientRequestBodies.signQuote(input)) != nil,
            (try? ClientRequestBodies.monotonicCounter(input)) != nil,
            (try? ClientRequestBodies.recoverySecret(input)) != nil,
            (try? ClientRequestBodies.replicaKey(input)) != nil,
        ].contains(true)
        for wrapped in [true, false] {
            guard let secrets = try? ClientRequestBodies.secrets(input, wrapped: wrapped) else { continue }
            for (name, secret) in secrets {
                for (_, definition) in Self.definitions where (try? secret.value(for: definition, name: name)) != nil {
                    accepted = true
                }
            }
        }
        return accepted
    }
}

/// A marble's CSR as activation reads it: DER, its signature, the names it asks for.
struct CSRHarness: FuzzHarness {
    static let name = "csr"
    static let surface = "a marble's certificate signing request (DER): parsing, signature, requested names"
    init() {}

    static func seeds() throws -> [(name: String, bytes: [UInt8])] {
        [
            ("localhost", try TestMarble().csr),
            (
                "ip and dns",
                try TestMarble(alternativeNames: [
                    .dnsName("a.example"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
                ]).csr
            ),
            ("uri (refused)", try TestMarble(alternativeNames: [.uniformResourceIdentifier("spiffe://x/y")]).csr),
        ]
    }

    func run(_ input: [UInt8]) -> Bool { (try? Coordinator.parseCSR(input)) != nil }
}

/// `rpc.Marble/Activate` as the mesh receives it (protobuf `ActivationReq`), through the
/// Coordinator's in-process activation with a simulated platform. A field the input leaves empty
/// is filled from a valid request, so one changed field at a time reaches the checks behind it.
final class ActivationHarness: FuzzHarness {
    static let name = "activation"
    static let surface = "rpc.Marble/Activate requests (protobuf) through the Coordinator's activation"
    let coordinator: Coordinator
    let marble: TestMarble
    let valid: Rpc_ActivationReq

    init() throws {
        let setUp = runBlocking { () -> Result<(Coordinator, TestMarble, Rpc_ActivationReq), any Error> in
            do {
                let platform = try SimulatedPlatform.generate()
                let coordinator = try await Coordinator.start(
                    verifier: platform.verifier, collateralProvider: platform.collateralProvider, store: MemoryStore(),
                    sealer: EphemeralSealer())
                let enclave = ActivationManifest.enclave(on: platform)
                _ = try await coordinator.setManifest(
                    ActivationManifest.bytes(signerID: enclave.signerID, maxActivations: 0))
                let marble = try TestMarble()
                var request = Rpc_ActivationReq()
                request.quote = Data(try marble.quote(platform, enclave: enclave))
                request.csr = Data(marble.csr)
                request.marbleType = "backend"
                request.uuid = "5b8c7a52-0f6e-4d38-9d3c-4f1e2a9b7c10"
                return .success((coordinator, marble, request))
            } catch {
                return .failure(error)
            }
        }
        (coordinator, marble, valid) = try setUp.get()
    }

    static func seeds() throws -> [(name: String, bytes: [UInt8])] {
        var requests: [(String, Rpc_ActivationReq)] = [("all fields from the valid request", Rpc_ActivationReq())]
        var probe = Rpc_ActivationReq()
        probe.marbleType = "probe"
        requests.append(("another marble type", probe))
        var uuid = Rpc_ActivationReq()
        uuid.uuid = "5B8C7A52-0F6E-4D38-9D3C-4F1E2A9B7C10"
        requests.append(("upper-case UUID", uuid))
        var real = Rpc_ActivationReq()
        real.quote = Data(try TestData.bytes("dcap/dcap-qvl/sgx_quote"))
        requests.append(("a real Intel quote", real))
        var csr = Rpc_ActivationReq()
        csr.csr = Data(try TestMarble(alternativeNames: [.dnsName("other.example")]).csr)
        requests.append(("another key's CSR", csr))
        return try requests.map { ($0.0, try $0.1.serializedBytes()) }
    }

    func run(_ input: [UInt8]) -> Bool {
        guard var request = try? Rpc_ActivationReq(serializedBytes: input) else { return false }
        if request.quote.isEmpty { request.quote = valid.quote }
        if request.csr.isEmpty { request.csr = valid.csr }
        if request.marbleType.isEmpty { request.marbleType = valid.marbleType }
        if request.uuid.isEmpty { request.uuid = valid.uuid }
        let activation = ActivationRequest(
            quote: Array(request.quote), csr: Array(request.csr), marbleType: request.marbleType, uuid: request.uuid)
        let coordinator = coordinator
        let certificate = marble.certificate
        return runBlocking { (try? await coordinator.activate(activation, peerCertificate: certificate)) != nil }
    }
}

/// The update log as `marblerun manifest log` verifies it: JSON lines, signatures by the root's
/// key, the hash chain and sequence.
struct AuditLogHarness: FuzzHarness {
    static let name = "audit-log"
    static let surface = "the signed update log (JSON lines): canonical form, signatures, hash chain"
    static let key: P256.Signing.PrivateKey = try! P256.Signing.PrivateKey(
        rawRepresentation: fixedKeyBytes("audit log"))
    let root: Certificate

    init() throws {
        root = try Certificate(pemEncoded: TestCertificates.ecdsa(commonName: "root", key: Self.key))
    }

    static func seeds() throws -> [(name: String, bytes: [UInt8])] {
        var lines: [[UInt8]] = []
        var previous = AuditLog.genesis
        for (sequence, event) in ["initManifest", "setSecret", "updateManifest"].enumerated() {
            let entry = AuditEntry(
                sequence: sequence + 1, time: "2026-12-01T10:00:0\(sequence)Z", event: event,
                user: sequence == 0 ? nil : "alice", details: ["fingerprint": String(repeating: "ab", count: 32)],
                previous: previous)
            let line = try AuditLog.line(for: entry) { Array(try key.signature(for: $0).derRepresentation) }
            previous = AuditLog.hash(of: line)
            lines.append(line)
        }
        return [
            ("three entries", Array(lines.joined(separator: [0x0A]))), ("one entry", lines[0]),
        ]
    }

    func run(_ input: [UInt8]) -> Bool {
        let lines = input.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
        guard let entries = try? AuditLog.verify(lines, root: root) else { return false }
        precondition(entries.count == lines.count, "a verified log lost or gained entries")
        return true
    }
}
