import Crypto

/// The measurements a simulated TDX trust domain reports in its TD report: what a TDX package
/// in a manifest names (MRTD, RTMR0–3, MRSEAM, TDAttributes, XFAM) and the owner fields.
public struct SimulatedTD: Sendable, Hashable {
    /// 48 bytes: the TD's initial contents, as the TDX module measured them at build time.
    public var mrTD: [UInt8]
    /// RTMR0…RTMR3, 48 bytes each: what firmware, kernel and user space extended at run time.
    public var rtmrs: [[UInt8]]
    /// 48 bytes: the TDX module's measurement.
    public var mrSeam: [UInt8]
    /// 8 bytes; bit 0 is TUD.DEBUG, bit 28 SEPT_VE_DISABLE (set by every production TD).
    public var tdAttributes: [UInt8]
    /// 8 bytes: the extended features the TD may use.
    public var xfam: [UInt8]
    public var mrConfigID: [UInt8]
    public var mrOwner: [UInt8]
    public var mrOwnerConfig: [UInt8]

    /// TD attributes of a production TD: SEPT_VE_DISABLE, not debug.
    public static let productionAttributes: [UInt8] = [0, 0, 0, 0x10, 0, 0, 0, 0]
    /// The XFAM of the real TDX quote in the test data (x87, SSE, AVX, AVX-512, PK, …).
    public static let defaultXFAM: [UInt8] = [0xE7, 0x02, 0x06, 0, 0, 0, 0, 0]

    public init(
        mrTD: [UInt8], rtmrs: [[UInt8]], mrSeam: [UInt8], tdAttributes: [UInt8] = SimulatedTD.productionAttributes,
        xfam: [UInt8] = SimulatedTD.defaultXFAM, mrConfigID: [UInt8] = Self.zero48, mrOwner: [UInt8] = Self.zero48,
        mrOwnerConfig: [UInt8] = Self.zero48
    ) {
        precondition(
            [mrTD, mrSeam, mrConfigID, mrOwner, mrOwnerConfig].allSatisfy { $0.count == 48 } && rtmrs.count == 4
                && rtmrs.allSatisfy { $0.count == 48 },
            "TD measurements are 48 bytes; there are four RTMRs")
        precondition(tdAttributes.count == 8 && xfam.count == 8, "TD attributes and XFAM are 8 bytes")
        self.mrTD = mrTD
        self.rtmrs = rtmrs
        self.mrSeam = mrSeam
        self.tdAttributes = tdAttributes
        self.xfam = xfam
        self.mrConfigID = mrConfigID
        self.mrOwner = mrOwner
        self.mrOwnerConfig = mrOwnerConfig
    }

    public static let zero48 = [UInt8](repeating: 0, count: 48)

    /// A TD whose measurements are SHA-384 digests of `name` and the register's name: distinct
    /// per name, stable across runs (for tests and examples).
    public static func named(_ name: String, debug: Bool = false) -> SimulatedTD {
        func measure(_ register: String) -> [UInt8] { Array(SHA384.hash(data: Array("\(name)/\(register)".utf8))) }
        var attributes = productionAttributes
        if debug { attributes[0] |= 0x01 }
        return SimulatedTD(
            mrTD: measure("MRTD"), rtmrs: (0..<4).map { measure("RTMR\($0)") }, mrSeam: measure("MRSEAM"),
            tdAttributes: attributes)
    }

    public var debug: Bool { tdAttributes[0] & 0x01 != 0 }
}
