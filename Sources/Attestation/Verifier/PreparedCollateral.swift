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
        /// Digests of QE reports (with their signatures) whose PCK signature was checked.
        var verifiedQEReports: Set<SHA256Digest> = []
    }

    /// Bounds memory on a Coordinator serving many platforms: past this many, start afresh.
    static let maximumPlatforms = 4096
    static let maximumQEReportsPerPlatform = 16

    public let collateral: Collateral
    let trustedRoot: Certificate
    let evaluation: TCBEvaluation
    let qeIdentity: EnclaveIdentity
    let window: Window
    /// Keyed by ``key(for:)``: hashing a 4 KiB certification chain on every lookup cost more than
    /// the lookup saved.
    private let platforms = Mutex<[SHA256Digest: Platform]>([:])

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

    /// The table key of a platform: SHA-256 of its certification data type and bytes.
    static func key(for data: CertificationData) -> SHA256Digest {
        var hasher = SHA256()
        hasher.update(data: [UInt8(truncatingIfNeeded: data.type), UInt8(truncatingIfNeeded: data.type >> 8)])
        hasher.update(data: data.data)
        return hasher.finalize()
    }

    /// The table key of a QE report and its signature.
    static func key(qeReport: [UInt8], signature: [UInt8]) -> SHA256Digest {
        var hasher = SHA256()
        hasher.update(data: qeReport)
        hasher.update(data: signature)
        return hasher.finalize()
    }

    func platform(
        for key: SHA256Digest, at time: Date, create: () throws(AttestationError) -> Platform
    ) throws(AttestationError) -> Platform {
        if let known = platforms.withLock({ $0[key] }), known.window.contains(time) { return known }
        let platform = try create()
        platforms.withLock { table in
            if table.count >= Self.maximumPlatforms { table.removeAll() }
            table[key] = platform
        }
        return platform
    }

    func hasVerifiedQEReport(_ report: SHA256Digest, platform key: SHA256Digest) -> Bool {
        platforms.withLock { $0[key]?.verifiedQEReports.contains(report) ?? false }
    }

    func rememberVerifiedQEReport(_ report: SHA256Digest, platform key: SHA256Digest) {
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
