import AsyncHTTPClient
import Attestation
import Crypto
import Foundation
import Logging
import NIOCore
import NIOSSL
import SwiftASN1
import X509

/// The joining side of key distribution: asks running replicas (their client API) for the
/// data key with a quote binding a fresh TLS client certificate, and accepts the answer only
/// when the peer's quote binds its root and our nonce and shows our own identity.
struct ReplicaKeyClient: Sendable {
    let peers: [String]
    let identity: PackagePolicy
    let quoteIssuer: any QuoteIssuer
    let verifier: QuoteVerifier
    let collateralProvider: any CollateralProvider
    let logger: Logger

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The key from the first peer that hands it over; every refusal is reported.
    func fetch() async throws -> [UInt8] {
        guard !peers.isEmpty else {
            throw Failure(
                description:
                    "no peer to ask: start this replica with --peer HOST:PORT (a running replica's client API) or EDG_COORDINATOR_PEERS"
            )
        }
        var reasons: [String] = []
        for peer in peers {
            do {
                let key = try await fetch(from: peer)
                logger.notice("obtained the data key from an attested replica", metadata: ["peer": "\(peer)"])
                return key
            } catch {
                logger.warning(
                    "a replica did not hand over the data key", metadata: ["peer": "\(peer)", "reason": "\(error)"])
                reasons.append("\(peer): \(error)")
            }
        }
        throw Failure(description: reasons.joined(separator: "; "))
    }

    /// Two requests. First `/api/v2/quote` with a nonce: its verified quote (our own identity,
    /// binding root and nonce) names the peer's root. Then the hand-over itself, over TLS that
    /// accepts only a server certificate issued under that root (the Coordinator serves the
    /// root itself), with a quote binding our TLS client certificate; the answer's quote must
    /// bind the hand-over label, root, nonce and that certificate.
    func fetch(from peer: String) async throws -> [UInt8] {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("MarbleRun Coordinator replica") }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: Date() - 60,
            notValidAfter: Date() + 600, issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: Certificate.Extensions {}, issuerPrivateKey: .init(key))
        let certificateDER = try certificate.serializeAsPEM().derBytes
        let quote = try quoteIssuer.issueQuote(reportData: Array(SHA256.hash(data: certificateDER)))

        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        tls.certificateChain = [.certificate(try NIOSSLCertificate(bytes: certificateDER, format: .der))]
        tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(key.derRepresentation), format: .der))

        // 1. Which root the peer is: only its verified quote says (this connection is not trusted).
        var probe = tls
        probe.certificateVerification = .none
        let probeNonce = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        let announced = try await Self.answer(
            Self.request(
                "https://\(peer)/api/v2/quote?nonce=\(CoordinatorQuote.nonceParameter(probeNonce))", body: nil,
                tls: probe))
        guard let chainPEM = announced.string("cert"), let probeQuote = announced.bytes("quote") else {
            throw Failure(description: "its /api/v2/quote answer lacks cert or quote")
        }
        let checked = try CoordinatorQuote(chainPEM: chainPEM, quote: probeQuote)
        let root = try checked.verifiedRoot(
            nonce: probeNonce, policy: identity, verifier: verifier,
            collateral: try await collateralProvider.collateral(for: checked.quote))
        let rootDER = try root.serializeAsPEM().derBytes

        // 2. The hand-over, to a server that proves it holds that root's key.
        var pinned = tls
        pinned.trustRoots = .certificates([try NIOSSLCertificate(bytes: rootDER, format: .der)])
        // The root names whatever --dns-names said; the peer may be dialled by another name.
        pinned.certificateVerification = .noHostnameVerification
        let nonce = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        let json =
            #"{"quote":"\#(Data(quote).base64EncodedString())","nonce":"\#(Data(nonce).base64EncodedString())"}"#
        let answer = try await Self.answer(
            Self.request("https://\(peer)/api/v2/replica/key", body: json, tls: pinned))
        guard let dataKey = answer.bytes("key"), let peerQuote = answer.bytes("quote"), let cert = answer.string("cert")
        else {
            throw Failure(description: "its answer lacks key, quote or cert")
        }
        let handOver = try CoordinatorQuote(chainPEM: cert, quote: peerQuote)
        guard try handOver.chain.last?.serializeAsPEM().derBytes == rootDER else {
            throw Failure(description: "it handed over the key under another root than the one its quote named")
        }
        _ = try handOver.verifiedRoot(
            binding: {
                CoordinatorQuote.handOverReportData(root: $0, nonce: nonce, replicaCertificate: certificateDER)
            },
            what: "the hand-over of the data key to this replica", policy: identity, verifier: verifier,
            collateral: try await collateralProvider.collateral(for: handOver.quote))
        return dataKey
    }

    /// One HTTPS request with its own client (its own TLS settings); the status and body.
    static func request(_ url: String, body: String?, tls: TLSConfiguration) async throws -> (UInt, ByteBuffer) {
        let client = HTTPClient(
            eventLoopGroupProvider: .singleton, configuration: HTTPClient.Configuration(tlsConfiguration: tls))
        do {
            var request = HTTPClientRequest(url: url)
            if let body {
                request.method = .POST
                request.body = .bytes(ByteBuffer(string: body))
            }
            let response = try await client.execute(request, timeout: .seconds(10))
            let bytes = try await response.body.collect(upTo: 1 << 20)
            try? await client.shutdown()
            return (response.status.code, bytes)
        } catch {
            try? await client.shutdown()
            throw Failure(description: "unreachable or not trusted: \(error)")
        }
    }

    /// The `data` of a JSend success, or the refusal with its message.
    static func answer(_ response: (status: UInt, body: ByteBuffer)) throws -> JSendData {
        guard
            let object = try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))
                as? [String: Any]
        else {
            throw Failure(description: "not a Coordinator's answer (HTTP \(response.status))")
        }
        guard object["status"] as? String == "success", let data = object["data"] as? [String: Any] else {
            let message = (object["message"] as? String).map { String($0.prefix(300)) } ?? "no reason"
            throw Failure(description: "refused (HTTP \(response.status)): \(message)")
        }
        return JSendData(fields: data.compactMapValues { $0 as? String })
    }

    /// The string fields of a JSend `data` object.
    struct JSendData {
        var fields: [String: String]
        func string(_ name: String) -> String? { fields[name] }
        func bytes(_ name: String) -> [UInt8]? { fields[name].flatMap { Data(base64Encoded: $0) }.map(Array.init) }
    }
}
