import CoordinatorCore
import GRPCCore
import Hummingbird

/// The one place where Coordinator refusals become HTTP and gRPC statuses.
extension CoordinatorError {
    var httpStatus: HTTPResponse.Status {
        switch code {
        case .wrongState: return .conflict
        case .invalidManifest, .invalidRequest: return .badRequest
        case .unknownMarbleType, .notFound: return .notFound
        case .attestation, .keyBinding, .forbidden: return .forbidden
        case .unauthenticated: return .unauthorized
        case .activationLimit: return .tooManyRequests
        case .conflict: return .conflict
        case .storeUnavailable, .manifestChanged, .collateralUnavailable: return .serviceUnavailable
        default: return .internalServerError
        }
    }

    var rpcCode: RPCError.Code {
        switch code {
        case .wrongState: return .failedPrecondition
        case .invalidManifest, .invalidRequest: return .invalidArgument
        case .unknownMarbleType, .notFound: return .notFound
        case .attestation, .keyBinding, .forbidden: return .permissionDenied
        case .unauthenticated: return .unauthenticated
        case .activationLimit: return .resourceExhausted
        case .conflict, .manifestChanged: return .aborted
        case .storeUnavailable, .collateralUnavailable: return .unavailable
        default: return .internalError
        }
    }
}
