import Crypto
import Foundation
import X509

/// Verifies DCAP quotes the way Intel's Quote Verification Library does: PCK chain and CRLs to
/// a pinned root, TCB Info and QE Identity signatures over their exact bytes, the QE report,
/// its binding to the attestation key, the quote signature, and the TCB levels.
public struct QuoteVerifier: Sendable {
    public let trustedRoot: Certificate

    /// `trustedRoot` defaults to Intel's real SGX root; pass a test root (Intel's sample PKI,
    /// the simulated platform) explicitly.
    public init(trustedRoot: Certificate = TrustAnchors.intelSGXRootCA) {
        self.trustedRoot = trustedRoot
    }

    /// Verifies `quote` with `collateral` as of `time`, or throws the step that failed. Nothing
    /// is kept between calls; a service verifying many quotes uses ``prepare(_:at:)`` once.
    public func verify(_ quote: Quote, collateral: Collateral, at time: Date) throws(AttestationError) -> VerifiedQuote
    {
        try verify(quote, with: prepare(collateral, at: time), at: time, remember: false)
    }

    /// Checks what does not depend on the quote — the root CRL, TCB Info and QE Identity with
    /// their chains and signatures — and returns it ready for many ``verify(_:with:at:)`` calls.
    public func prepare(_ collateral: Collateral, at time: Date) throws(AttestationError) -> PreparedCollateral {
        let chains = ChainValidator(root: trustedRoot, time: time)
        // Root CRL first: it covers every intermediate and the TCB signing certificate.
        try collateral.rootCACRL.validate(issuedBy: trustedRoot, at: time, name: "root CA CRL")
        let tcbInfo = try verifySigned(
            collateral.tcbInfo, chain: collateral.tcbInfoIssuerChain, name: "TCB Info", chains: chains,
            rootCRL: collateral.rootCACRL, code: .tcbInfoSignature)
        try checkWindow(tcbInfo.issueDate, tcbInfo.nextUpdate, at: time, name: "TCB Info", code: .tcbInfoExpired)
        try Self.checkKind(of: tcbInfo)
        let qeIdentity = try verifySigned(
            collateral.qeIdentity, chain: collateral.qeIdentityIssuerChain, name: "QE Identity", chains: chains,
            rootCRL: collateral.rootCACRL, code: .qeIdentitySignature,
            chainAlreadyValidated: collateral.qeIdentityIssuerChain == collateral.tcbInfoIssuerChain)
        try checkWindow(
            qeIdentity.issueDate, qeIdentity.nextUpdate, at: time, name: "QE Identity", code: .qeIdentityExpired)
        try Self.checkKind(of: qeIdentity)
        var window = Window(
            from: max(collateral.rootCACRL.thisUpdate, tcbInfo.issueDate, qeIdentity.issueDate),
            until: min(collateral.rootCACRL.nextUpdate ?? .distantFuture, tcbInfo.nextUpdate, qeIdentity.nextUpdate))
        window.narrow(to: trustedRoot)
        for chain in [collateral.tcbInfoIssuerChain, collateral.qeIdentityIssuerChain] {
            for certificate in chain { window.narrow(to: certificate) }
        }
        return PreparedCollateral(
            collateral: collateral, trustedRoot: trustedRoot, evaluation: try TCBEvaluation(tcbInfo: tcbInfo),
            qeIdentity: qeIdentity, window: window)
    }

    /// Verifies `quote` against collateral checked by ``prepare(_:at:)``. The PCK chain of each
    /// platform and its QE report are checked once and remembered while they stay valid; the
    /// quote's own signature is checked every time.
    public func verify(_ quote: Quote, with prepared: PreparedCollateral, at time: Date) throws(AttestationError)
        -> VerifiedQuote
    {
        try verify(quote, with: prepared, at: time, remember: true)
    }

    /// `remember: false` (one-off verification) skips the platform table entirely.
    private func verify(
        _ quote: Quote, with prepared: PreparedCollateral, at time: Date, remember: Bool
    ) throws(AttestationError) -> VerifiedQuote {
        guard quote.attestationKeyType == Quote.attestationKeyTypeECDSAP256 else {
            throw AttestationError(
                .unsupportedQuote, "attestation key type \(quote.attestationKeyType) is not ECDSA P-256 (2)")
        }
        guard quote.qeVendorID == Quote.intelQEVendorID else {
            throw AttestationError(.unsupportedQuote, "the quoting enclave is not Intel's (vendor ID mismatch)")
        }
        guard prepared.trustedRoot == trustedRoot else {
            throw AttestationError(.untrustedRoot, "the collateral was prepared for another trust anchor")
        }
        if !prepared.window.contains(time) {
            // Outside the window checked before: check again, to report the precise reason.
            return try verify(quote, with: prepare(prepared.collateral, at: time), at: time, remember: false)
        }
        let evaluation = prepared.evaluation
        let makePlatform = { () throws(AttestationError) -> PreparedCollateral.Platform in
            try preparePlatform(
                quote.certificationData, collateral: prepared.collateral, tcbInfo: evaluation.tcbInfo, at: time)
        }
        let platformKey = PreparedCollateral.key(for: quote.certificationData)
        let platform =
            remember ? try prepared.platform(for: platformKey, at: time, create: makePlatform) : try makePlatform()
        if quote.isTDX != (evaluation.tcbInfo.id == "TDX") {
            throw AttestationError(
                .collateralMismatch,
                "a \(quote.isTDX ? "TDX" : "SGX") quote needs \(quote.isTDX ? "TDX" : "SGX") TCB Info, got \(evaluation.tcbInfo.id ?? "SGX (version 2)")"
            )
        }

        let expectedQE = quote.isTDX ? "TD_QE" : "QE"
        guard prepared.qeIdentity.id == expectedQE else {
            throw AttestationError(
                .collateralMismatch,
                "a \(quote.isTDX ? "TDX" : "SGX") quote needs the \(expectedQE) identity, got \(prepared.qeIdentity.id ?? "none")"
            )
        }

        // The quote itself: QE report by the PCK key, its binding to the attestation key, the quote signature.
        let qeReportKey = PreparedCollateral.key(qeReport: quote.qeReport.raw, signature: quote.qeReportSignature)
        if !remember || !prepared.hasVerifiedQEReport(qeReportKey, platform: platformKey) {
            guard Self.isValid(rawSignature: quote.qeReportSignature, of: quote.qeReport.raw, by: platform.pckKey)
            else {
                throw AttestationError(
                    .qeReportSignature, "the QE report's signature does not verify with the PCK certificate's key")
            }
            if remember { prepared.rememberVerifiedQEReport(qeReportKey, platform: platformKey) }
        }
        let binding = Array(SHA256.hash(data: quote.attestationKey + quote.qeAuthData))
        let qeReportData = quote.qeReport.reportData
        guard Array(qeReportData[0..<32]) == binding, qeReportData[32..<64].allSatisfy({ $0 == 0 }) else {
            throw AttestationError(
                .qeBinding,
                "the QE report does not bind this attestation key (SHA-256 of key and QE authentication data)")
        }
        guard let attestationKey = try? P256.Signing.PublicKey(rawRepresentation: quote.attestationKey),
            Self.isValid(rawSignature: quote.isvSignature, of: quote.signedRegion, by: attestationKey)
        else {
            throw AttestationError(.isvSignature, "the quote's signature does not verify with its attestation key")
        }

        // Identities and TCB levels.
        let qe = try evaluateQE(quote.qeReport, identity: prepared.qeIdentity)
        let pck = platform.pckExtension
        let result: (status: TCBStatus, advisories: [String], platformStatus: TCBStatus)
        switch quote.body {
        case .sgx:
            let level = try evaluation.sgxLevel(pck)
            result = (
                TCBStatus.converge(platform: level.status, components: [qe.status]), level.advisoryIDs + qe.advisories,
                level.status
            )
        case .tdx(let report):
            try evaluation.checkTDXModule(report)
            let launch = try evaluation.tdx(pck, teeTCBSVN: report.teeTCBSVN, qe: qe)
            if let current = report.teeTCBSVN2 {
                let now = try evaluation.tdx(pck, teeTCBSVN: current, qe: qe)
                result = (
                    TCBStatus.relaunch(launch: launch.status, current: now.status), launch.advisories + now.advisories,
                    launch.platform
                )
            } else {
                result = (launch.status, launch.advisories, launch.platform)
            }
        }
        return Self.claims(
            quote, status: result.status, advisories: result.advisories, platformStatus: result.platformStatus,
            qeStatus: qe.status,
            fmspc: pck.fmspc)
    }

    /// The PCK chain of one platform: CRL, chain to the root, SGX extension, match with the TCB Info.
    private func preparePlatform(
        _ certificationData: CertificationData, collateral: Collateral, tcbInfo: TCBInfo, at time: Date
    ) throws(AttestationError) -> PreparedCollateral.Platform {
        let pckChain: [Certificate]
        if let chain = try certificationData.pemChain() {
            pckChain = chain
        } else if let supplied = collateral.pckCertificateChain {
            pckChain = supplied
        } else {
            throw AttestationError(
                .certificateChain,
                "the quote carries certification data type \(certificationData.type), so its PCK certificate must come with the collateral"
            )
        }
        guard pckChain.count >= 2 else {
            throw AttestationError(.certificateChain, "the PCK chain needs the PCK certificate and its CA")
        }
        try collateral.pckCRL.validate(issuedBy: pckChain[1], at: time, name: "PCK CRL")
        try ChainValidator(root: trustedRoot, time: time).validate(
            pckChain, name: "PCK certificate chain", crls: [collateral.rootCACRL, collateral.pckCRL])
        let pckExtension = try PCKExtension(certificate: pckChain[0])
        guard tcbInfo.fmspc == pckExtension.fmspc else {
            throw AttestationError(
                .collateralMismatch,
                "the TCB Info is for FMSPC \(hexString(tcbInfo.fmspc)), the PCK certificate's is \(hexString(pckExtension.fmspc))"
            )
        }
        guard tcbInfo.pceID == pckExtension.pceID else {
            throw AttestationError(.collateralMismatch, "the TCB Info's PCE ID does not match the PCK certificate's")
        }
        guard let pckKey = P256.Signing.PublicKey(pckChain[0].publicKey) else {
            throw AttestationError(.malformedCertificate, "the PCK certificate's key is not ECDSA P-256")
        }
        var window = Window(from: collateral.pckCRL.thisUpdate, until: collateral.pckCRL.nextUpdate ?? .distantFuture)
        for certificate in pckChain { window.narrow(to: certificate) }
        return PreparedCollateral.Platform(pckKey: pckKey, pckExtension: pckExtension, window: window)
    }

    private func verifySigned<Document>(
        _ signed: Collateral.Signed<Document>, chain: [Certificate], name: String, chains: ChainValidator,
        rootCRL: CertificateRevocationList, code: AttestationError.Code, chainAlreadyValidated: Bool = false
    ) throws(AttestationError) -> Document {
        let signer = try Self.tcbSigner(in: chain, root: trustedRoot, name: name)
        if !chainAlreadyValidated { try chains.validate(chain, name: "\(name) issuer chain", crls: [rootCRL]) }
        guard let key = P256.Signing.PublicKey(signer.publicKey),
            Self.isValid(rawSignature: signed.signature, of: signed.bytes, by: key)
        else {
            throw AttestationError(code, "the \(name) signature does not verify with \(signer.subject)'s key")
        }
        return signed.document
    }

    /// The subject Intel's QVL requires of the certificate that signs TCB Info and QE Identity.
    static let tcbSigningSubject = try! DistinguishedName {
        CommonName("Intel SGX TCB Signing")
        OrganizationName("Intel Corporation")
        LocalityName("Santa Clara")
        StateOrProvinceName("CA")
        CountryName("US")
    }

    /// The signer of a TCB Info or QE Identity, as QVL's TCB signing chain check has it: the chain
    /// is the TCB Signing certificate alone or followed by the pinned root, issued by that root,
    /// with Intel's TCB Signing subject, not a CA, for digital signatures. Any other certificate
    /// that chains to the root (a PCK certificate, a PCK CA) signs nothing Intel publishes.
    static func tcbSigner(in chain: [Certificate], root: Certificate, name: String) throws(AttestationError)
        -> Certificate
    {
        guard let signer = chain.first else {
            throw AttestationError(.certificateChain, "the \(name) issuer chain is empty")
        }
        let refuse = { (reason: String) in
            AttestationError(
                .collateralSigner,
                "the \(name) is signed by \(signer.subject), which is not Intel's TCB Signing certificate: \(reason)")
        }
        if chain.count > 2 || (chain.count == 2 && chain[1] != root) {
            throw refuse(
                "its issuer chain must be the TCB Signing certificate and the root, got "
                    + chain.map { "\($0.subject)" }.joined(separator: " <- "))
        }
        guard signer.issuer == root.subject else {
            throw refuse("it is issued by \(signer.issuer), not by the root \(root.subject)")
        }
        guard signer.subject == Self.tcbSigningSubject else {
            throw refuse("its subject is not \(Self.tcbSigningSubject)")
        }
        guard let constraints = try? signer.extensions.basicConstraints else {
            throw refuse("it has no valid basic constraints")
        }
        if case .isCertificateAuthority = constraints { throw refuse("it is a CA certificate") }
        guard let usage = try? signer.extensions.keyUsage, usage.digitalSignature, !usage.keyCertSign else {
            throw refuse("its key usage is not digital signature only")
        }
        return signer
    }

    /// TCB Info version 2 (SGX, no id) or 3 (id SGX or TDX), of TCB type 0, as QVL accepts it.
    static func checkKind(of tcbInfo: TCBInfo) throws(AttestationError) {
        switch (tcbInfo.version, tcbInfo.id) {
        case (2, nil), (3, "SGX"), (3, "TDX"): break
        default:
            throw AttestationError(
                .malformedCollateral,
                "TCB Info version \(tcbInfo.version) with id \(tcbInfo.id ?? "none") is not one this verifier knows (2 without id; 3 with SGX or TDX)"
            )
        }
        guard tcbInfo.tcbType == 0 else {
            throw AttestationError(
                .malformedCollateral, "TCB Info tcbType \(tcbInfo.tcbType.map(String.init) ?? "none") is not 0")
        }
    }

    /// QE Identity version 2 with id QE or TD_QE.
    static func checkKind(of identity: EnclaveIdentity) throws(AttestationError) {
        guard identity.version == 2, identity.id == "QE" || identity.id == "TD_QE" else {
            throw AttestationError(
                .malformedCollateral,
                "QE Identity version \(identity.version) with id \(identity.id ?? "none") is not one this verifier knows (version 2, id QE or TD_QE)"
            )
        }
    }

    private func checkWindow(_ issued: Date, _ next: Date, at time: Date, name: String, code: AttestationError.Code)
        throws(AttestationError)
    {
        if time < issued { throw AttestationError(code, "the \(name) was issued at \(issued), after \(time)") }
        if time > next { throw AttestationError(code, "the \(name) expired at \(next); fetch fresh collateral") }
    }

    private func evaluateQE(_ report: EnclaveReport, identity: EnclaveIdentity) throws(AttestationError) -> (
        status: TCBStatus, advisories: [String]
    ) {
        guard report.mrSigner == identity.mrSigner, report.isvProdID == identity.isvProdID else {
            throw AttestationError(
                .qeIdentityMismatch, "the quoting enclave's MRSIGNER or ISVPRODID is not the QE Identity's")
        }
        let miscSelect = Array(report.raw[16..<20])
        for index in 0..<4 where miscSelect[index] & identity.miscSelectMask[index] != identity.miscSelect[index] {
            throw AttestationError(
                .qeIdentityMismatch, "the quoting enclave's MISCSELECT does not match the QE Identity")
        }
        for (index, byte) in report.attributes.enumerated()
        where byte & identity.attributesMask[index] != identity.attributes[index] {
            throw AttestationError(.qeIdentityMismatch, "the quoting enclave's ATTRIBUTES do not match the QE Identity")
        }
        guard let level = identity.levels.first(where: { $0.isvSVN <= report.isvSVN }) else {
            throw AttestationError(
                .noMatchingTCBLevel, "no QE Identity TCB level covers the quoting enclave's ISVSVN \(report.isvSVN)")
        }
        guard TCBStatus.qeStatuses.contains(level.tcbStatus) else {
            throw AttestationError(.malformedCollateral, "the QE Identity has the unknown status \(level.tcbStatus)")
        }
        return (level.tcbStatus, level.advisoryIDs)
    }

    static func isValid(rawSignature: [UInt8], of message: [UInt8], by key: P256.Signing.PublicKey) -> Bool {
        guard let signature = try? P256.Signing.ECDSASignature(rawRepresentation: rawSignature) else { return false }
        return key.isValidSignature(signature, for: SHA256.hash(data: message))
    }

    private static func claims(
        _ quote: Quote, status: TCBStatus, advisories: [String], platformStatus: TCBStatus, qeStatus: TCBStatus,
        fmspc: [UInt8]
    ) -> VerifiedQuote {
        let sortedAdvisories = Array(Set(advisories)).sorted()
        switch quote.body {
        case .sgx(let report):
            return VerifiedQuote(
                tee: .sgx, uniqueID: report.mrEnclave, signerID: report.mrSigner, productID: report.isvProdID,
                securityVersion: report.isvSVN, debug: report.isDebug, reportData: report.reportData, tcbStatus: status,
                advisoryIDs: sortedAdvisories, platformTCBStatus: platformStatus, qeTCBStatus: qeStatus, fmspc: fmspc,
                td: nil)
        case .tdx(let report):
            return VerifiedQuote(
                tee: .tdx, uniqueID: report.mrTD, signerID: [], productID: 0, securityVersion: 0, debug: report.isDebug,
                reportData: report.reportData, tcbStatus: status, advisoryIDs: sortedAdvisories,
                platformTCBStatus: platformStatus,
                qeTCBStatus: qeStatus, fmspc: fmspc,
                td: .init(
                    mrTD: report.mrTD, rtmrs: report.rtmrs, mrConfigID: report.mrConfigID, mrOwner: report.mrOwner,
                    mrOwnerConfig: report.mrOwnerConfig, mrSeam: report.mrSeam, mrSignerSeam: report.mrSignerSeam,
                    tdAttributes: report.tdAttributes, xfam: report.xfam, teeTCBSVN: report.teeTCBSVN))
        }
    }
}

func hexString(_ bytes: [UInt8]) -> String { Hex.encode(bytes, uppercase: true) }
