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

    func fetch(from peer: String) async throws -> [UInt8] {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("MarbleRun Coordinator replica") }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: Date() - 60,
            notValidAfter: Date() + 600, issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: Certificate.Extensions {}, issuerPrivateKey: .init(key))
        let certificateDER = try certificate.serializeAsPEM().derBytes
        let quote = try quoteIssuer.issueQuote(reportData: Array(SHA256.hash(data: certificateDER)))
        let nonce = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }

        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        // The peer is trusted by its quote below, not by a CA.
        tls.certificateVerification = .none
        tls.certificateChain = [.certificate(try NIOSSLCertificate(bytes: certificateDER, format: .der))]
        tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(key.derRepresentation), format: .der))
        let client = HTTPClient(
            eventLoopGroupProvider: .singleton, configuration: HTTPClient.Configuration(tlsConfiguration: tls))
        let body: ByteBuffer
        let status: UInt
        do {
            var request = HTTPClientRequest(url: "https://\(peer)/api/v2/replica/key")
            request.method = .POST
            let json =
                #"{"quote":"\#(Data(quote).base64EncodedString())","nonce":"\#(Data(nonce).base64EncodedString())"}"#
            request.body = .bytes(ByteBuffer(string: json))
            let response = try await client.execute(request, timeout: .seconds(10))
            status = response.status.code
            body = try await response.body.collect(upTo: 1 << 20)
            try? await client.shutdown()
        } catch {
            try? await client.shutdown()
            throw Failure(description: "unreachable: \(error)")
        }
        struct Envelope: Decodable {
            struct Answer: Decodable {
                var key: String
                var quote: String
                var cert: String
            }
            var status: String
            var data: Answer?
            var message: String?
        }
        guard let envelope = try? JSONDecoder().decode(Envelope.self, from: Data(body.readableBytesView)) else {
            throw Failure(description: "not a Coordinator's answer (HTTP \(status))")
        }
        guard let answer = envelope.data, let dataKey = Data(base64Encoded: answer.key),
            let peerQuote = Data(base64Encoded: answer.quote)
        else {
            throw Failure(description: "refused (HTTP \(status)): \(envelope.message?.prefix(300) ?? "no reason")")
        }
        let checked = try CoordinatorQuote(chainPEM: answer.cert, quote: Array(peerQuote))
        _ = try checked.verifiedRoot(
            nonce: nonce, policy: identity, verifier: verifier,
            collateral: try await collateralProvider.collateral(for: checked.quote))
        return Array(dataKey)
    }
}
