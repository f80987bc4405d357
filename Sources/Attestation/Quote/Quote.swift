/// A DCAP ECDSA quote: SGX v3, or TDX v4/v5, possibly inside MarbleRun's OpenEnclave wrapper.
///
/// Parsing checks every length against the bytes and keeps the signed regions as they are;
/// it verifies nothing (see ``QuoteVerifier``).
public struct Quote: Sendable, Hashable {
    public enum Body: Sendable, Hashable {
        case sgx(EnclaveReport)
        case tdx(TDReport)
    }

    public static let teeTypeSGX: UInt32 = 0x0000_0000
    public static let teeTypeTDX: UInt32 = 0x0000_0081
    public static let attestationKeyTypeECDSAP256: UInt16 = 2
    public static let intelQEVendorID: [UInt8] = [
        0x93, 0x9A, 0x72, 0x33, 0xF7, 0x9C, 0x4C, 0xA9, 0x94, 0x0A, 0x0D, 0xB3, 0x95, 0x7F, 0x06, 0x07,
    ]

    public let version: UInt16
    public let attestationKeyType: UInt16
    public let teeType: UInt32
    /// QE and PCE SVN from the header (SGX v3; reserved in TDX quotes).
    public let headerQESVN: UInt16
    public let headerPCESVN: UInt16
    public let qeVendorID: [UInt8]
    public let userData: [UInt8]
    public let body: Body
    /// Header and body: what the attestation key signed.
    public let signedRegion: [UInt8]
    /// ECDSA P-256 signature (r‖s) over ``signedRegion``.
    public let isvSignature: [UInt8]
    /// The attestation public key (x‖y).
    public let attestationKey: [UInt8]
    /// The quoting enclave's report, signed by the PCK key.
    public let qeReport: EnclaveReport
    public let qeReportSignature: [UInt8]
    public let qeAuthData: [UInt8]
    public let certificationData: CertificationData
    /// The quote came inside MarbleRun's OpenEnclave header.
    public let wasOpenEnclaveWrapped: Bool

    public var isTDX: Bool { teeType == Self.teeTypeTDX }

    /// Report data of the attested enclave or TD (64 bytes).
    public var reportData: [UInt8] {
        switch body {
        case .sgx(let report): return report.reportData
        case .tdx(let report): return report.reportData
        }
    }

    /// Parses a quote; an OpenEnclave-wrapped quote (`{u32 version=1, u32 type=2, u64 size}`) is unwrapped.
    public init(parsing input: [UInt8]) throws(AttestationError) {
        var bytes = input
        var wrapped = false
        if let inner = try Self.openEnclavePayload(input) {
            bytes = inner
            wrapped = true
        }
        var reader = ByteReader(bytes)
        version = try reader.u16("the header version")
        attestationKeyType = try reader.u16("the attestation key type")
        teeType = try reader.u32("the TEE type")
        headerQESVN = try reader.u16("the QE SVN")
        headerPCESVN = try reader.u16("the PCE SVN")
        qeVendorID = try reader.read(16, "the QE vendor ID")
        userData = try reader.read(20, "the user data")
        wasOpenEnclaveWrapped = wrapped

        switch version {
        case 3:
            guard teeType == Self.teeTypeSGX else {
                throw AttestationError(
                    .malformedQuote, "a version 3 quote must be SGX (TEE type 0), got 0x\(String(teeType, radix: 16))")
            }
            body = .sgx(try EnclaveReport(reader.read(EnclaveReport.size, "the enclave report")))
        case 4:
            if teeType == Self.teeTypeTDX {
                body = .tdx(try TDReport(reader.read(TDReport.size10, "the TD report")))
            } else if teeType == Self.teeTypeSGX {
                body = .sgx(try EnclaveReport(reader.read(EnclaveReport.size, "the enclave report")))
            } else {
                throw AttestationError(.malformedQuote, "unknown TEE type 0x\(String(teeType, radix: 16))")
            }
        case 5:
            let bodyType = try reader.u16("the body type")
            let bodySize = try reader.u32("the body size")
            switch (bodyType, bodySize) {
            case (1, UInt32(EnclaveReport.size)):
                guard teeType == Self.teeTypeSGX else {
                    throw AttestationError(.malformedQuote, "an SGX report body in a quote whose TEE type is not SGX")
                }
                body = .sgx(try EnclaveReport(reader.read(EnclaveReport.size, "the enclave report")))
            case (2, UInt32(TDReport.size10)), (3, UInt32(TDReport.size15)):
                guard teeType == Self.teeTypeTDX else {
                    throw AttestationError(.malformedQuote, "a TD report body in a quote whose TEE type is not TDX")
                }
                body = .tdx(try TDReport(reader.read(Int(bodySize), "the TD report")))
            default:
                throw AttestationError(
                    .malformedQuote,
                    "body type \(bodyType) of \(bodySize) bytes is not an SGX report (1, 384), TD report 1.0 (2, 584) or 1.5 (3, 648)"
                )
            }
        default:
            throw AttestationError(.unsupportedQuote, "quote version \(version) is not supported (3, 4 and 5 are)")
        }
        signedRegion = Array(bytes[0..<reader.offset])

        let signatureLength = Int(try reader.u32("the signature data length"))
        var signature = ByteReader(try reader.read(signatureLength, "the signature data"))
        // Quote generation pads TDX quotes to the buffer size it announced (the real TDX v4 sample
        // ends in 70 zero bytes, which dcap-qvl accepts); anything else after the signature data is refused.
        let trailing = reader.remaining
        if trailing > 0, try reader.read(trailing, "the padding").contains(where: { $0 != 0 }) {
            throw AttestationError(
                .malformedQuote, "the quote has \(trailing) bytes after its signature data that are not zero padding")
        }
        isvSignature = try signature.read(64, "the quote signature")
        attestationKey = try signature.read(64, "the attestation key")
        var qeSection: ByteReader
        if version == 3 {
            qeSection = signature
        } else {
            let type = try signature.u16("the certification data type")
            let size = Int(try signature.u32("the certification data size"))
            guard type == CertificationData.qeReportType else {
                throw AttestationError(
                    .malformedQuote,
                    "version \(version) quotes carry certification data type 6 (QE report), got \(type)")
            }
            qeSection = ByteReader(try signature.read(size, "the QE report certification data"))
        }
        qeReport = try EnclaveReport(qeSection.read(EnclaveReport.size, "the QE report"))
        qeReportSignature = try qeSection.read(64, "the QE report signature")
        let authLength = Int(try qeSection.u16("the QE authentication data length"))
        qeAuthData = try qeSection.read(authLength, "the QE authentication data")
        let certificationType = try qeSection.u16("the certification data type")
        let certificationSize = Int(try qeSection.u32("the certification data size"))
        certificationData = try CertificationData(
            type: certificationType, data: qeSection.read(certificationSize, "the certification data"))
    }

    /// The inner quote if `bytes` start with MarbleRun's OpenEnclave header.
    static func openEnclavePayload(_ bytes: [UInt8]) throws(AttestationError) -> [UInt8]? {
        guard bytes.count >= 16, bytes.littleEndianU32(at: 0) == 1, bytes.littleEndianU32(at: 4) == 2 else {
            return nil
        }
        var reader = ByteReader(bytes, offset: 8)
        let size = try reader.u64("the OpenEnclave header")
        guard size <= UInt64(bytes.count - 16) else {
            throw AttestationError(
                .truncated, "the OpenEnclave header announces \(size) bytes of quote, \(bytes.count - 16) follow")
        }
        let end = 16 + Int(size)
        guard bytes[end...].allSatisfy({ $0 == 0 }) else {
            throw AttestationError(
                .malformedQuote,
                "the OpenEnclave-wrapped quote is followed by \(bytes.count - end) bytes that are not zero padding")
        }
        return Array(bytes[16..<end])
    }
}
