/// An SGX enclave report body (384 bytes): the identity an enclave's quote, or the quoting
/// enclave's own report, attests.
public struct EnclaveReport: Sendable, Hashable {
    public static let size = 384

    /// The 384 bytes as signed.
    public let raw: [UInt8]

    public init(_ raw: [UInt8]) throws(AttestationError) {
        guard raw.count == Self.size else {
            throw AttestationError(.truncated, "an enclave report is \(Self.size) bytes, got \(raw.count)")
        }
        self.raw = raw
    }

    public var cpuSVN: [UInt8] { Array(raw[0..<16]) }
    public var miscSelect: UInt32 { raw.littleEndianU32(at: 16) }
    public var attributes: [UInt8] { Array(raw[48..<64]) }
    /// MRENCLAVE: MarbleRun's UniqueID.
    public var mrEnclave: [UInt8] { Array(raw[64..<96]) }
    /// MRSIGNER: MarbleRun's SignerID.
    public var mrSigner: [UInt8] { Array(raw[128..<160]) }
    public var configID: [UInt8] { Array(raw[192..<256]) }
    /// ISVPRODID: MarbleRun's ProductID.
    public var isvProdID: UInt16 { raw.littleEndianU16(at: 256) }
    /// ISVSVN: MarbleRun's SecurityVersion.
    public var isvSVN: UInt16 { raw.littleEndianU16(at: 258) }
    public var configSVN: UInt16 { raw.littleEndianU16(at: 260) }
    public var isvFamilyID: [UInt8] { Array(raw[304..<320]) }
    public var reportData: [UInt8] { Array(raw[320..<384]) }
    /// ATTRIBUTES.DEBUG (bit 1).
    public var isDebug: Bool { raw[48] & 0x02 != 0 }
}

/// A TDX TD report body: 1.0 (584 bytes) or 1.5 (648 bytes, adds TEE_TCB_SVN2 and MRSERVICETD).
public struct TDReport: Sendable, Hashable {
    public static let size10 = 584
    public static let size15 = 648

    public let raw: [UInt8]

    public init(_ raw: [UInt8]) throws(AttestationError) {
        guard raw.count == Self.size10 || raw.count == Self.size15 else {
            throw AttestationError(
                .malformedQuote, "a TD report is \(Self.size10) or \(Self.size15) bytes, got \(raw.count)")
        }
        self.raw = raw
    }

    public var isVersion15: Bool { raw.count == Self.size15 }
    public var teeTCBSVN: [UInt8] { Array(raw[0..<16]) }
    public var mrSeam: [UInt8] { Array(raw[16..<64]) }
    public var mrSignerSeam: [UInt8] { Array(raw[64..<112]) }
    public var seamAttributes: [UInt8] { Array(raw[112..<120]) }
    public var tdAttributes: [UInt8] { Array(raw[120..<128]) }
    public var xfam: [UInt8] { Array(raw[128..<136]) }
    public var mrTD: [UInt8] { Array(raw[136..<184]) }
    public var mrConfigID: [UInt8] { Array(raw[184..<232]) }
    public var mrOwner: [UInt8] { Array(raw[232..<280]) }
    public var mrOwnerConfig: [UInt8] { Array(raw[280..<328]) }
    /// RTMR0…3.
    public var rtmrs: [[UInt8]] { (0..<4).map { Array(raw[328 + $0 * 48..<376 + $0 * 48]) } }
    public var reportData: [UInt8] { Array(raw[520..<584]) }
    /// TD 1.5 only.
    public var teeTCBSVN2: [UInt8]? { isVersion15 ? Array(raw[584..<600]) : nil }
    /// TD 1.5 only.
    public var mrServiceTD: [UInt8]? { isVersion15 ? Array(raw[600..<648]) : nil }
    /// TUD.DEBUG (bit 0 of TDATTRIBUTES).
    public var isDebug: Bool { raw[120] & 0x01 != 0 }
}
