import Attestation
import CoordinatorCore
import Crypto
import Hummingbird
import JSONText
import NIOSSL

/// Key distribution between replicas (not part of MarbleRun's API): a replica that cannot
/// unseal the state's data key presents a quote binding its TLS client certificate and gets the
/// key over that connection, with this Coordinator's quote binding its root, the replica's nonce
/// and its certificate, apart from what `/quote` binds (``CoordinatorQuote/handOverReportData``).
extension ClientAPI {
    static let replicaPaths: Set<String> = ["/api/v2/replica/key"]

    func addReplicaRoutes(to router: Router<ClientRequestContext>) {
        router.post("/api/v2/replica/key") { request, context in
            let body = try await request.body.collect(upTo: 64 << 10)
            return try await JSend.success(replicaKey(Array(buffer: body), context))
        }
    }

    /// `{"quote": base64, "nonce": base64}` → `{key, quote, cert}`.
    func replicaKey(_ body: [UInt8], _ context: ClientRequestContext) async throws -> JSONValue {
        guard let certificate = try? await context.channel.nioSSL_peerCertificate().get()?.toDERBytes() else {
            throw CoordinatorError(.unauthenticated, "a replica must present the TLS certificate its quote binds")
        }
        let (quote, nonce) = try ClientRequestBodies.replicaKey(body)
        do {
            let key = try await coordinator.handOverDataKey(quote: quote, peerCertificate: certificate)
            let pki = await coordinator.pki
            let rootDER = try pki.root.derBytes()
            let own = try quoteIssuer.issueQuote(
                reportData: CoordinatorQuote.handOverReportData(
                    root: rootDER, nonce: nonce, replicaCertificate: certificate))
            logger.notice("handed the data key to an attested replica")
            return .object([
                JSONMember("key", .bytes(key)), JSONMember("quote", .bytes(own)),
                JSONMember("cert", .string(try pki.root.serializeAsPEM().pemString)),
            ])
        } catch let error as CoordinatorError {
            logger.warning("refused a replica the data key", metadata: ["reason": "\(error.message)"])
            throw error
        }
    }
}
