/// Why the Coordinator refused a request: a stable code (mapped to HTTP and gRPC statuses in
/// one place by the server) and a sentence for the caller. Never contains a secret.
public struct CoordinatorError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}

extension CoordinatorError.Code {
    /// The request is not allowed in the Coordinator's current state.
    public static let wrongState = Self(rawValue: "wrong-state")
    public static let invalidManifest = Self(rawValue: "invalid-manifest")
    public static let invalidRequest = Self(rawValue: "invalid-request")
    public static let unknownMarbleType = Self(rawValue: "unknown-marble-type")
    /// The quote did not verify, or does not match the marble's package.
    public static let attestation = Self(rawValue: "attestation")
    /// The quote does not bind the TLS key the marble uses.
    public static let keyBinding = Self(rawValue: "key-binding")
    public static let activationLimit = Self(rawValue: "activation-limit")
    public static let internalFailure = Self(rawValue: "internal")
    /// The sealed state cannot be unsealed or does not authenticate.
    public static let sealedState = Self(rawValue: "sealed-state")
    public static let storeUnavailable = Self(rawValue: "store-unavailable")
    /// The request needs a manifest user's client certificate and has none that matches.
    public static let unauthenticated = Self(rawValue: "unauthenticated")
    /// The user's roles do not allow the request.
    public static let forbidden = Self(rawValue: "forbidden")
    /// A named thing (a secret, a pending update) does not exist.
    public static let notFound = Self(rawValue: "not-found")
    /// A concurrent change won; the request may be retried.
    public static let conflict = Self(rawValue: "conflict")
    /// The manifest (or the state an activation was checked against) changed while the
    /// activation ran: nothing was issued or counted; retry under the new policy.
    public static let manifestChanged = Self(rawValue: "manifest-changed")
    /// The collateral service (PCCS, Intel PCS) is unreachable or failing and no valid
    /// collateral is cached: nothing was decided about the quote; retry.
    public static let collateralUnavailable = Self(rawValue: "collateral-unavailable")
}
