import AsyncHTTPClient
import Attestation
import Crypto
import Foundation
import NIOCore
import NIOSSL
import X509

/// What a marble checks the Coordinator's quote with when it has no pinned root: a verifier
/// (its trust anchor) and where the quote's collateral comes from.
public struct CoordinatorEvidence: Sendable {
    public var verifier: QuoteVerifier
    public var collateral: @Sendable (Quote) async throws -> Collateral

    public init(verifier: QuoteVerifier, collateral: @escaping @Sendable (Quote) async throws -> Collateral) {
        self.verifier = verifier
        self.collateral = collateral
    }

    /// The simulated platform's verifier and collateral (simulation only, no security).
    public static func simulated(_ platform: SimulatedPlatform) -> CoordinatorEvidence {
        let collateral = platform.collateral
        return CoordinatorEvidence(verifier: platform.verifier) { _ in collateral }
    }
}

/// Trust in the Coordinator without a pinned root: fetch `/api/v2/quote` with a fresh nonce
/// from its client API and accept its root only when the quote verifies, binds the root and the
/// nonce, and shows the era config's identity (what `marblerun` does before it pins a root).
enum CoordinatorAttestation {
    /// The verified root certificate (PEM) of the Coordinator at `clientAddress`.
    static func root(clientAddress: String, era: EraConfig, evidence: CoordinatorEvidence) async throws(MarbleError)
        -> String
    {
        let nonce = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        let answer = try await fetch(clientAddress: clientAddress, nonce: nonce)
        do {
            let checked = try CoordinatorQuote(chainPEM: answer.cert, quote: answer.quote)
            let collateral: Collateral
            do {
                collateral = try await evidence.collateral(checked.quote)
            } catch {
                throw MarbleError(
                    .unreachable, "the collateral for the Coordinator's quote could not be obtained: \(error)")
            }
            let root = try checked.verifiedRoot(
                nonce: nonce, policy: era.policy, verifier: evidence.verifier, collateral: collateral)
            return try root.serializeAsPEM().pemString
        } catch let error as MarbleError {
            throw error
        } catch let error as AttestationError {
            throw MarbleError(
                .untrusted, "the Coordinator at \(clientAddress) failed attestation: \(error.message) [\(error.code)]")
        } catch {
            throw MarbleError(.untrusted, "the Coordinator's root certificate cannot be encoded: \(error)")
        }
    }

    struct Answer: Decodable {
        var cert: String
        var quote: [UInt8]

        enum CodingKeys: CodingKey { case cert, quote }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            cert = try container.decode(String.self, forKey: .cert)
            guard let quote = Data(base64Encoded: try container.decode(String.self, forKey: .quote)) else {
                throw DecodingError.dataCorruptedError(
                    forKey: .quote, in: container, debugDescription: "not base64")
            }
            self.quote = Array(quote)
        }
    }

    struct Envelope: Decodable {
        var status: String
        var data: Answer?
        var message: String?
    }

    /// GET /api/v2/quote?nonce=… over TLS without certificate checks: trust comes from the quote.
    static func fetch(clientAddress: String, nonce: [UInt8]) async throws(MarbleError) -> Answer {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        tls.certificateVerification = .none
        let client = HTTPClient(
            eventLoopGroupProvider: .singleton, configuration: HTTPClient.Configuration(tlsConfiguration: tls))
        let url = "https://\(clientAddress)/api/v2/quote?nonce=\(CoordinatorQuote.nonceParameter(nonce))"
        let body: ByteBuffer
        do {
            let response = try await client.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
            body = try await response.body.collect(upTo: 1 << 20)
            try? await client.shutdown()
        } catch {
            try? await client.shutdown()
            throw MarbleError(.unreachable, "the Coordinator's client API at \(clientAddress) is unreachable: \(error)")
        }
        guard let envelope = try? JSONDecoder().decode(Envelope.self, from: Data(body.readableBytesView)) else {
            throw MarbleError(.untrusted, "the answer of \(clientAddress) to /api/v2/quote is not a Coordinator's")
        }
        guard envelope.status == "success", let answer = envelope.data else {
            throw MarbleError(
                .unreachable,
                "the Coordinator at \(clientAddress) gave no quote: \(envelope.message?.prefix(200) ?? "no reason")")
        }
        return answer
    }
}
