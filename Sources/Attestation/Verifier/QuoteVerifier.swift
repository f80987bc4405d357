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

    /// Verifies `quote` with `collateral` as of `time`, or throws the step that failed.
    public func verify(_ quote: Quote, collateral: Collateral, at time: Date) throws(AttestationError) -> VerifiedQuote
    {
        guard quote.attestationKeyType == Quote.attestationKeyTypeECDSAP256 else {
            throw AttestationError(
                .unsupportedQuote, "attestation key type \(quote.attestationKeyType) is not ECDSA P-256 (2)")
        }
        guard quote.qeVendorID == Quote.intelQEVendorID else {
            throw AttestationError(.unsupportedQuote, "the quoting enclave is not Intel's (vendor ID mismatch)")
        }
        let chains = ChainValidator(root: trustedRoot, time: time)

        // Root CRL first: it covers every intermediate and the TCB signing certificate.
        try collateral.rootCACRL.validate(issuedBy: trustedRoot, at: time, name: "root CA CRL")

        // The PCK chain, from the quote or supplied with the collateral.
        let pckChain: [Certificate]
        if let chain = try quote.certificationData.pemChain() {
            pckChain = chain
        } else if let supplied = collateral.pckCertificateChain {
            pckChain = supplied
        } else {
            throw AttestationError(
                .certificateChain,
                "the quote carries certification data type \(quote.certificationData.type), so its PCK certificate must come with the collateral"
            )
        }
        guard pckChain.count >= 2 else {
            throw AttestationError(.certificateChain, "the PCK chain needs the PCK certificate and its CA")
        }
        let pckCA = pckChain[1]
        try collateral.pckCRL.validate(issuedBy: pckCA, at: time, name: "PCK CRL")
        try chains.validate(pckChain, name: "PCK certificate chain", crls: [collateral.rootCACRL, collateral.pckCRL])
        let pck = pckChain[0]
        let pckExtension = try PCKExtension(certificate: pck)

        // TCB Info and QE Identity: issuer chain, signature over the exact bytes, validity window.
        let tcbInfo = try verifySigned(
            collateral.tcbInfo, chain: collateral.tcbInfoIssuerChain, name: "TCB Info", chains: chains,
            rootCRL: collateral.rootCACRL, code: .tcbInfoSignature)
        try checkWindow(tcbInfo.issueDate, tcbInfo.nextUpdate, at: time, name: "TCB Info", code: .tcbInfoExpired)
        let qeIdentity = try verifySigned(
            collateral.qeIdentity, chain: collateral.qeIdentityIssuerChain, name: "QE Identity", chains: chains,
            rootCRL: collateral.rootCACRL, code: .qeIdentitySignature)
        try checkWindow(
            qeIdentity.issueDate, qeIdentity.nextUpdate, at: time, name: "QE Identity", code: .qeIdentityExpired)

        guard tcbInfo.fmspc == pckExtension.fmspc else {
            throw AttestationError(
                .collateralMismatch,
                "the TCB Info is for FMSPC \(hexString(tcbInfo.fmspc)), the PCK certificate's is \(hexString(pckExtension.fmspc))"
            )
        }
        guard tcbInfo.pceID == pckExtension.pceID else {
            throw AttestationError(.collateralMismatch, "the TCB Info's PCE ID does not match the PCK certificate's")
        }
        if quote.isTDX != (tcbInfo.id == "TDX") {
            throw AttestationError(
                .collateralMismatch,
                "a \(quote.isTDX ? "TDX" : "SGX") quote needs \(quote.isTDX ? "TDX" : "SGX") TCB Info, got \(tcbInfo.id ?? "SGX (version 2)")"
            )
        }

        // The quote itself: QE report by the PCK key, its binding to the attestation key, the quote signature.
        guard let pckKey = P256.Signing.PublicKey(pck.publicKey),
            Self.isValid(rawSignature: quote.qeReportSignature, of: quote.qeReport.raw, by: pckKey)
        else {
            throw AttestationError(
                .qeReportSignature, "the QE report's signature does not verify with the PCK certificate's key")
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
        let qe = try evaluateQE(quote.qeReport, identity: qeIdentity)
        let evaluation = try TCBEvaluation(tcbInfo: tcbInfo, pck: pckExtension)
        let platform: (status: TCBStatus, advisories: [String], platformStatus: TCBStatus)
        switch quote.body {
        case .sgx:
            let level = try evaluation.sgxLevel()
            platform = (
                TCBStatus.converge(platform: level.status, components: [qe.status]), level.advisoryIDs + qe.advisories,
                level.status
            )
        case .tdx(let report):
            try evaluation.checkTDXModule(report)
            let launch = try evaluation.tdx(teeTCBSVN: report.teeTCBSVN, qe: qe)
            if let current = report.teeTCBSVN2 {
                let now = try evaluation.tdx(teeTCBSVN: current, qe: qe)
                platform = (
                    TCBStatus.relaunch(launch: launch.status, current: now.status), launch.advisories + now.advisories,
                    launch.platform
                )
            } else {
                platform = (launch.status, launch.advisories, launch.platform)
            }
        }
        return Self.claims(
            quote, status: platform.status, advisories: platform.advisories, platformStatus: platform.platformStatus,
            qeStatus: qe.status, fmspc: pckExtension.fmspc)
    }

    private func verifySigned<Document>(
        _ signed: Collateral.Signed<Document>, chain: [Certificate], name: String, chains: ChainValidator,
        rootCRL: CertificateRevocationList, code: AttestationError.Code
    ) throws(AttestationError) -> Document {
        guard let signer = chain.first else {
            throw AttestationError(.certificateChain, "the \(name) issuer chain is empty")
        }
        try chains.validate(chain, name: "\(name) issuer chain", crls: [rootCRL])
        guard let key = P256.Signing.PublicKey(signer.publicKey),
            Self.isValid(rawSignature: signed.signature, of: signed.bytes, by: key)
        else {
            throw AttestationError(code, "the \(name) signature does not verify with \(signer.subject)'s key")
        }
        return signed.document
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
        return (level.tcbStatus, level.advisoryIDs ?? [])
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

func hexString(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789ABCDEF".utf8)
    return String(decoding: bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0xF)]] }, as: UTF8.self)
}
