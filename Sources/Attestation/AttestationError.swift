/// Why evidence was not accepted: the verification step that caught it (``code``) and a
/// sentence for people. Errors compare by code, so tests assert the step, not the wording.
public struct AttestationError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
    }

    public var code: Code
    public var message: String
    public var file: String
    public var line: Int

    public init(_ code: Code, _ message: String, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.message = message
        self.file = file
        self.line = line
    }

    public var description: String { "\(code): \(message)" }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}

extension AttestationError.Code {
    // Reading the quote
    /// The quote ends before a field it declares.
    public static let truncated = Self(rawValue: "truncated")
    /// A length, type or version in the quote is not one this verifier knows.
    public static let malformedQuote = Self(rawValue: "malformed-quote")
    public static let unsupportedQuote = Self(rawValue: "unsupported-quote")
    // Certificates and CRLs
    public static let malformedCertificate = Self(rawValue: "malformed-certificate")
    public static let untrustedRoot = Self(rawValue: "untrusted-root")
    public static let certificateChain = Self(rawValue: "certificate-chain")
    public static let certificateExpired = Self(rawValue: "certificate-expired")
    public static let certificateRevoked = Self(rawValue: "certificate-revoked")
    public static let malformedCRL = Self(rawValue: "malformed-crl")
    public static let crlSignature = Self(rawValue: "crl-signature")
    public static let crlExpired = Self(rawValue: "crl-expired")
    public static let pckExtension = Self(rawValue: "pck-extension")
    // Collateral
    public static let malformedCollateral = Self(rawValue: "malformed-collateral")
    /// The collateral service could not be reached or failed for now (a retry may succeed).
    public static let collateralUnavailable = Self(rawValue: "collateral-unavailable")
    public static let tcbInfoSignature = Self(rawValue: "tcb-info-signature")
    public static let tcbInfoExpired = Self(rawValue: "tcb-info-expired")
    public static let qeIdentitySignature = Self(rawValue: "qe-identity-signature")
    public static let qeIdentityExpired = Self(rawValue: "qe-identity-expired")
    public static let collateralMismatch = Self(rawValue: "collateral-mismatch")
    /// TCB Info or QE Identity signed by a certificate other than Intel's TCB Signing certificate under the root.
    public static let collateralSigner = Self(rawValue: "collateral-signer")
    // The quote's signatures and identities
    public static let qeReportSignature = Self(rawValue: "qe-report-signature")
    public static let qeBinding = Self(rawValue: "qe-binding")
    public static let isvSignature = Self(rawValue: "isv-signature")
    public static let qeIdentityMismatch = Self(rawValue: "qe-identity-mismatch")
    public static let tdxModuleMismatch = Self(rawValue: "tdx-module-mismatch")
    public static let noMatchingTCBLevel = Self(rawValue: "no-matching-tcb-level")
    // Policy
    public static let policy = Self(rawValue: "policy")
}
