import CoordinatorCore
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import MeshAPI
import Metrics
import X509

/// `rpc.Marble/Activate` (compat §2): the marble's TLS client certificate, which the quote must
/// bind, comes from the mutual-TLS handshake.
struct MeshService: Rpc_Marble.SimpleServiceProtocol {
    let coordinator: Coordinator
    let logger: Logger

    func activate(request: Rpc_ActivationReq, context: ServerContext) async throws -> Rpc_ActivationResp {
        let start = ContinuousClock.now
        // StateGauge creates the counters of the manifest's types; here only the label is chosen.
        let marbleType =
            await coordinator.isMarbleType(request.marbleType) ? request.marbleType : ActivationMetrics.otherLabel
        Counter(label: ActivationMetrics.attempts, dimensions: [("marble_type", marbleType)]).increment()
        let result: Result<ActivationParameters, CoordinatorError>
        do throws(CoordinatorError) {
            guard let transport = context.transportSpecific as? HTTP2ServerTransport.Posix.Context,
                let certificate = transport.peerCertificate
            else {
                throw CoordinatorError(.keyBinding, "the marble presented no TLS client certificate")
            }
            guard let der = try? certificate.derBytes() else {
                throw CoordinatorError(.keyBinding, "the marble's TLS client certificate cannot be encoded")
            }
            result = .success(
                try await coordinator.activate(
                    ActivationRequest(
                        quote: Array(request.quote), csr: Array(request.csr), marbleType: request.marbleType,
                        uuid: request.uuid),
                    peerCertificate: der))
        } catch {
            result = .failure(error)
        }
        Timer(
            label: "coordinator_activation_duration_seconds",
            dimensions: [("outcome", (try? result.get()) == nil ? "refused" : "activated")],
            preferredDisplayUnit: .seconds
        ).recordElapsed(since: start)
        switch result {
        case .success(let parameters):
            Counter(label: ActivationMetrics.successes, dimensions: [("marble_type", marbleType)]).increment()
            logger.notice(
                "marble activated", metadata: ["marbleType": "\(marbleType)", "uuid": "\(request.uuid.prefix(64))"])
            var response = Rpc_ActivationResp()
            response.parameters.files = parameters.files.mapValues { Data($0) }
            response.parameters.env = parameters.env.mapValues { Data($0) }
            response.parameters.argv = parameters.argv
            return response
        case .failure(let error):
            logger.warning(
                "marble activation refused",
                metadata: ["marbleType": "\(marbleType)", "code": "\(error.code)", "reason": "\(error.message)"])
            throw RPCError(code: error.rpcCode, message: error.message)
        }
    }
}
