/// The outcome of a policy: accepted, or rejected with a reason a user can act on.
public enum PolicyDecision: Sendable, Hashable {
    case accepted
    case rejected(String)
}

/// One rule about a verified quote; a ``PackagePolicy`` runs a list of them.
public protocol QuoteRule: Sendable {
    func evaluate(_ quote: VerifiedQuote) -> PolicyDecision
}

/// Whether a verified quote may run as a manifest package (compat §4), with MarbleRun's rules:
/// UniqueID, or SignerID with ProductID and the lowest SecurityVersion; a debug enclave only
/// under a Debug package; UpToDate always accepted, other TCB statuses only when listed
/// (SWHardeningNeeded when the list is empty); with SWHardeningNeeded, every advisory must be
/// in AcceptedAdvisories when that list is given.
public struct PackagePolicy: Sendable {
    public var debug: Bool
    public var uniqueID: [UInt8]?
    public var signerID: [UInt8]?
    public var productID: UInt16?
    public var securityVersion: UInt16?
    public var acceptedTCBStatuses: [TCBStatus]
    public var acceptedAdvisories: [String]
    /// A TDX package's measurements; nil: an SGX package.
    public var tdx: TDXMeasurementRule?

    public init(
        debug: Bool = false, uniqueID: [UInt8]? = nil, signerID: [UInt8]? = nil, productID: UInt16? = nil,
        securityVersion: UInt16? = nil, acceptedTCBStatuses: [TCBStatus] = [], acceptedAdvisories: [String] = []
    ) {
        self.debug = debug
        self.uniqueID = uniqueID
        self.signerID = signerID
        self.productID = productID
        self.securityVersion = securityVersion
        self.acceptedTCBStatuses = acceptedTCBStatuses
        self.acceptedAdvisories = acceptedAdvisories
    }

    /// MarbleRun accepts SWHardeningNeeded when a package lists no statuses.
    public static let defaultAcceptedTCBStatuses: [TCBStatus] = [.swHardeningNeeded]

    public var rules: [any QuoteRule] {
        let identity: [any QuoteRule] =
            tdx.map { [$0] } ?? [
                IdentityRule(uniqueID: uniqueID, signerID: signerID, productID: productID),
                SecurityVersionRule(minimum: securityVersion),
            ]
        return identity + [
            DebugRule(allowDebug: debug),
            TCBStatusRule(
                accepted: acceptedTCBStatuses.isEmpty ? Self.defaultAcceptedTCBStatuses : acceptedTCBStatuses),
            AdvisoryRule(accepted: acceptedAdvisories),
        ]
    }

    public func evaluate(_ quote: VerifiedQuote) -> PolicyDecision {
        for rule in rules {
            if case .rejected(let reason) = rule.evaluate(quote) { return .rejected(reason) }
        }
        return .accepted
    }

    /// Throws ``AttestationError/Code/policy`` with the reason when the quote is not accepted.
    public func check(_ quote: VerifiedQuote) throws(AttestationError) {
        if case .rejected(let reason) = evaluate(quote) { throw AttestationError(.policy, reason) }
    }
}

public struct IdentityRule: QuoteRule {
    public var uniqueID: [UInt8]?
    public var signerID: [UInt8]?
    public var productID: UInt16?

    public func evaluate(_ quote: VerifiedQuote) -> PolicyDecision {
        guard quote.tee == .sgx else { return .rejected("a TDX trust domain's quote does not match an SGX package") }
        if uniqueID == nil && signerID == nil { return .rejected("the package names no UniqueID or SignerID") }
        if let uniqueID, quote.uniqueID != uniqueID {
            return .rejected(
                "UniqueID \(hexString(quote.uniqueID).lowercased()) is not the package's \(hexString(uniqueID).lowercased())"
            )
        }
        if let signerID, quote.signerID != signerID {
            return .rejected(
                "SignerID \(hexString(quote.signerID).lowercased()) is not the package's \(hexString(signerID).lowercased())"
            )
        }
        if let productID, quote.productID != productID {
            return .rejected("ProductID \(quote.productID) is not the package's \(productID)")
        }
        return .accepted
    }
}

public struct SecurityVersionRule: QuoteRule {
    public var minimum: UInt16?

    public func evaluate(_ quote: VerifiedQuote) -> PolicyDecision {
        if let minimum, quote.securityVersion < minimum {
            return .rejected("SecurityVersion \(quote.securityVersion) is below the package's \(minimum)")
        }
        return .accepted
    }
}

public struct DebugRule: QuoteRule {
    public var allowDebug: Bool

    public func evaluate(_ quote: VerifiedQuote) -> PolicyDecision {
        quote.debug && !allowDebug
            ? .rejected("the enclave runs in debug mode, and the package is not a Debug package") : .accepted
    }
}

public struct TCBStatusRule: QuoteRule {
    public var accepted: [TCBStatus]

    public func evaluate(_ quote: VerifiedQuote) -> PolicyDecision {
        if quote.tcbStatus == .upToDate || accepted.contains(quote.tcbStatus) { return .accepted }
        let advisories = quote.advisoryIDs.isEmpty ? "" : " (advisories \(quote.advisoryIDs.joined(separator: ", ")))"
        return .rejected(
            "TCB status \(quote.tcbStatus)\(advisories) is not accepted; the package accepts \(([TCBStatus.upToDate] + accepted).map(\.rawValue).joined(separator: ", "))"
        )
    }
}

public struct AdvisoryRule: QuoteRule {
    public var accepted: [String]

    public func evaluate(_ quote: VerifiedQuote) -> PolicyDecision {
        guard quote.tcbStatus == .swHardeningNeeded, !accepted.isEmpty else { return .accepted }
        let lowered = Set(accepted.map { $0.lowercased() })
        let missing = quote.advisoryIDs.filter { !lowered.contains($0.lowercased()) }
        return missing.isEmpty
            ? .accepted : .rejected("advisories \(missing.joined(separator: ", ")) are not in AcceptedAdvisories")
    }
}

/// A TDX package: the quote must be a TDX quote whose measurements equal each one the package
/// names. A package that does not name TDAttributes accepts only TDs with SEPT_VE_DISABLE set.
public struct TDXMeasurementRule: QuoteRule, Sendable, Hashable {
    public var mrTD: [UInt8]
    public var rtmrs: [Int: [UInt8]]
    public var mrSeam: [UInt8]?
    public var tdAttributes: [UInt8]?
    public var xfam: [UInt8]?

    public init(
        mrTD: [UInt8], rtmrs: [Int: [UInt8]] = [:], mrSeam: [UInt8]? = nil, tdAttributes: [UInt8]? = nil,
        xfam: [UInt8]? = nil
    ) {
        self.mrTD = mrTD
        self.rtmrs = rtmrs
        self.mrSeam = mrSeam
        self.tdAttributes = tdAttributes
        self.xfam = xfam
    }

    public func evaluate(_ quote: VerifiedQuote) -> PolicyDecision {
        guard quote.tee == .tdx, let td = quote.td else {
            return .rejected("an SGX enclave's quote does not match a TDX package")
        }
        func differs(_ name: String, _ actual: [UInt8], _ expected: [UInt8]?) -> PolicyDecision? {
            guard let expected, actual != expected else { return nil }
            return .rejected(
                "\(name) \(hexString(actual).lowercased()) is not the package's \(hexString(expected).lowercased())")
        }
        var checks = [("MRTD", td.mrTD, Optional(mrTD))]
        for index in 0..<4 where index < td.rtmrs.count {
            checks.append(("RTMR\(index)", td.rtmrs[index], rtmrs[index]))
        }
        checks += [
            ("MRSEAM", td.mrSeam, mrSeam), ("TDAttributes", td.tdAttributes, tdAttributes), ("XFAM", td.xfam, xfam),
        ]
        for (name, actual, expected) in checks {
            if let refusal = differs(name, actual, expected) { return refusal }
        }
        if tdAttributes == nil, !Self.hasSEPTVEDisable(td.tdAttributes) {
            return .rejected(
                "TDAttributes \(hexString(td.tdAttributes).lowercased()) lack SEPT_VE_DISABLE (bit 28), so the host can raise #VE in the TD at will; name these attributes in the package's TDAttributes to accept such a TD"
            )
        }
        return .accepted
    }

    /// Bit 28 of TDATTRIBUTES: EPT violations do not become #VE exceptions inside the TD.
    static func hasSEPTVEDisable(_ attributes: [UInt8]) -> Bool {
        attributes.count == 8 && attributes[3] & 0x10 != 0
    }
}
