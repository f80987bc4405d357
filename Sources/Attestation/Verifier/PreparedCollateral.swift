import Crypto
import Foundation
import Synchronization
import X509

/// A time window in which checks made once stay true.
struct Window: Sendable {
    var from: Date
    var until: Date

    func contains(_ time: Date) -> Bool { time >= from && time <= until }

    mutating func narrow(to certificate: Certificate) {
        from = max(from, certificate.notValidBefore)
        until = min(until, certificate.notValidAfter)
    }
}

/// Collateral whose quote-independent checks passed (``QuoteVerifier/prepare(_:at:)``), with
/// the PCK chains and QE reports of the platforms seen since, each remembered while it stays
/// valid. Safe to share between tasks; holds public data only.
public final class PreparedCollateral: Sendable {
    struct Platform: Sendable {
        var pckKey: P256.Signing.PublicKey
        var pckExtension: PCKExtension
        var window: Window
        /// QE reports (with their signatures) whose PCK signature was checked.
        var verifiedQEReports: Set<[UInt8]> = []
    }

    /// Bounds memory on a Coordinator serving many platforms: past this many, start afresh.
    static let maximumPlatforms = 4096
    static let maximumQEReportsPerPlatform = 16

    public let collateral: Collateral
    let trustedRoot: Certificate
    let evaluation: TCBEvaluation
    let qeIdentity: EnclaveIdentity
    let window: Window
    private let platforms = Mutex<[CertificationData: Platform]>([:])

    init(
        collateral: Collateral, trustedRoot: Certificate, evaluation: TCBEvaluation, qeIdentity: EnclaveIdentity,
        window: Window
    ) {
        self.collateral = collateral
        self.trustedRoot = trustedRoot
        self.evaluation = evaluation
        self.qeIdentity = qeIdentity
        self.window = window
    }

    /// When the earliest of the checked documents, CRLs and certificates expires.
    public var validUntil: Date { window.until }

    func platform(
        for key: CertificationData, at time: Date, create: () throws(AttestationError) -> Platform
    ) throws(AttestationError) -> Platform {
        if let known = platforms.withLock({ $0[key] }), known.window.contains(time) { return known }
        let platform = try create()
        platforms.withLock { table in
            if table.count >= Self.maximumPlatforms { table.removeAll() }
            table[key] = platform
        }
        return platform
    }

    func hasVerifiedQEReport(_ report: [UInt8], platform key: CertificationData) -> Bool {
        platforms.withLock { $0[key]?.verifiedQEReports.contains(report) ?? false }
    }

    func rememberVerifiedQEReport(_ report: [UInt8], platform key: CertificationData) {
        platforms.withLock { table in
            guard var platform = table[key] else { return }
            if platform.verifiedQEReports.count >= Self.maximumQEReportsPerPlatform {
                platform.verifiedQEReports.removeAll()
            }
            platform.verifiedQEReports.insert(report)
            table[key] = platform
        }
    }
}
