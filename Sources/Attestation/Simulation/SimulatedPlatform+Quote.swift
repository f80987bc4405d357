import Crypto
import Foundation
import X509

extension SimulatedPlatform {
    /// An SGX ECDSA v3 quote for `enclave` with `reportData` (at most 64 bytes, zero-padded),
    /// carrying the PCK chain as certification data type 5. Intel's QE sends 32 bytes of QE
    /// authentication data; tests pass other sizes, which the format allows.
    public func quote(reportData: [UInt8], enclave: SimulatedEnclave, qeAuthDataSize: Int = 32) throws -> [UInt8] {
        precondition(reportData.count <= 64, "report data holds 64 bytes")
        precondition(enclave.uniqueID.count == 32 && enclave.signerID.count == 32, "measurements are 32 bytes")
        var header: [UInt8] = []
        header += le(UInt16(3)) + le(Quote.attestationKeyTypeECDSAP256) + le(Quote.teeTypeSGX)
        header += le(configuration.qeSVN) + le(configuration.pceSVN) + Quote.intelQEVendorID
        header += [UInt8](repeating: 0, count: 20)
        var attributes = [UInt8](repeating: 0, count: 16)
        attributes[0] = 0x05 | (enclave.debug ? 0x02 : 0)
        attributes[8] = 0xE7
        let body = Self.report(
            cpuSVN: configuration.tcbComponents, attributes: attributes, mrEnclave: enclave.uniqueID,
            mrSigner: enclave.signerID,
            productID: enclave.productID, svn: enclave.securityVersion,
            reportData: reportData + [UInt8](repeating: 0, count: 64 - reportData.count))
        return try signed(
            header + body, qeSVN: configuration.qeSVN, qeMRSigner: Self.qeMRSigner, qeProductID: Self.qeProductID,
            qeAuthDataSize: qeAuthDataSize, version: 3)
    }

    /// A TDX ECDSA v4 quote for `td` with `reportData` (at most 64 bytes, zero-padded): a TD
    /// report 1.0 with this platform's TEE_TCB_SVN and its TDX module (MRSIGNERSEAM zero, no
    /// SEAM attributes), signed by the TD quoting enclave, whose report and the PCK chain come as
    /// certification data type 6 around type 5, as Intel's TD QE writes them.
    public func tdxQuote(reportData: [UInt8], td: SimulatedTD, qeAuthDataSize: Int = 32) throws -> [UInt8] {
        precondition(reportData.count <= 64, "report data holds 64 bytes")
        var header: [UInt8] = []
        header += le(UInt16(4)) + le(Quote.attestationKeyTypeECDSAP256) + le(Quote.teeTypeTDX)
        header += [UInt8](repeating: 0, count: 4) + Quote.intelQEVendorID  // reserved in TDX quotes
        header += [UInt8](repeating: 0, count: 20)
        var body = configuration.teeTCBSVN + td.mrSeam + Self.tdxModuleMRSigner
        body += [UInt8](repeating: 0, count: 8) + td.tdAttributes + td.xfam + td.mrTD  // SEAMATTRIBUTES zero
        body += td.mrConfigID + td.mrOwner + td.mrOwnerConfig + td.rtmrs.joined()
        body += reportData + [UInt8](repeating: 0, count: 64 - reportData.count)
        assert(body.count == TDReport.size10)
        return try signed(
            header + body, qeSVN: configuration.tdQESVN, qeMRSigner: Self.tdQEMRSigner,
            qeProductID: Self.tdQEProductID, qeAuthDataSize: qeAuthDataSize, version: 4)
    }

    /// Header and body signed by the attestation key, which the QE report (signed by the PCK key)
    /// binds; version 3 carries the QE report directly, version 4 inside certification data type 6.
    private func signed(
        _ signed: [UInt8], qeSVN: UInt16, qeMRSigner: [UInt8], qeProductID: UInt16, qeAuthDataSize: Int,
        version: Int
    ) throws -> [UInt8] {
        let isvSignature = Array(try attestationKey.signature(for: SHA256.hash(data: signed)).rawRepresentation)
        let attestationPublicKey = Array(attestationKey.publicKey.rawRepresentation)
        let authData = (0..<qeAuthDataSize).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        var qeAttributes = [UInt8](repeating: 0, count: 16)
        qeAttributes[0] = 0x11
        let qeReport = Self.report(
            cpuSVN: configuration.tcbComponents, attributes: qeAttributes,
            mrEnclave: Array(SHA256.hash(data: qeMRSigner)),
            mrSigner: qeMRSigner, productID: qeProductID, svn: qeSVN,
            reportData: Array(SHA256.hash(data: attestationPublicKey + authData)) + [UInt8](repeating: 0, count: 32))
        let qeSignature = Array(try pckKey.signature(for: SHA256.hash(data: qeReport)).rawRepresentation)
        let chain = try [pckCertificate, pckCACertificate, rootCertificate].map {
            try $0.serializeAsPEM().pemString + "\n"
        }.joined()
        var qeSection = qeReport + qeSignature + le(UInt16(authData.count)) + authData
        qeSection += le(CertificationData.pemChainType) + le(UInt32(chain.utf8.count)) + Array(chain.utf8)
        var signatureData = isvSignature + attestationPublicKey
        if version == 3 {
            signatureData += qeSection
        } else {
            signatureData += le(CertificationData.qeReportType) + le(UInt32(qeSection.count)) + qeSection
        }
        return signed + le(UInt32(signatureData.count)) + signatureData
    }

    static func report(
        cpuSVN: [UInt8], attributes: [UInt8], mrEnclave: [UInt8], mrSigner: [UInt8], productID: UInt16, svn: UInt16,
        reportData: [UInt8]
    ) -> [UInt8] {
        var report = cpuSVN
        report += [UInt8](repeating: 0, count: 4 + 12 + 16)  // MISCSELECT, reserved, ISVEXTPRODID
        report += attributes + mrEnclave + [UInt8](repeating: 0, count: 32) + mrSigner
        report += [UInt8](repeating: 0, count: 32 + 64)  // reserved, CONFIGID
        report += le(productID) + le(svn) + le(UInt16(0))
        report += [UInt8](repeating: 0, count: 42 + 16)  // reserved, ISVFAMILYID
        report += reportData
        assert(report.count == EnclaveReport.size)
        return report
    }
}

func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    withUnsafeBytes(of: value.littleEndian) { Array($0) }
}
