/// What a verified quote proves: the enclave's or TD's measurements, its report data, and the
/// platform's TCB status with the advisories behind it.
public struct VerifiedQuote: Sendable, Hashable {
    public enum TEE: String, Sendable, Hashable {
        case sgx = "SGX"
        case tdx = "TDX"
    }

    /// TDX measurements.
    public struct TDMeasurements: Sendable, Hashable {
        public var mrTD: [UInt8]
        public var rtmrs: [[UInt8]]
        public var mrConfigID: [UInt8]
        public var mrOwner: [UInt8]
        public var mrOwnerConfig: [UInt8]
        public var mrSeam: [UInt8]
        public var mrSignerSeam: [UInt8]
        public var tdAttributes: [UInt8]
        public var xfam: [UInt8]
        public var teeTCBSVN: [UInt8]
    }

    public var tee: TEE
    /// MRENCLAVE (SGX) or MRTD (TDX).
    public var uniqueID: [UInt8]
    /// MRSIGNER (SGX); empty for TDX.
    public var signerID: [UInt8]
    public var productID: UInt16
    public var securityVersion: UInt16
    public var debug: Bool
    public var reportData: [UInt8]
    /// The converged status (platform, QE and TDX module), as Intel's library reports it.
    public var tcbStatus: TCBStatus
    /// Sorted, without duplicates.
    public var advisoryIDs: [String]
    public var platformTCBStatus: TCBStatus
    public var qeTCBStatus: TCBStatus
    public var fmspc: [UInt8]
    public var td: TDMeasurements?

    public init(
        tee: TEE, uniqueID: [UInt8], signerID: [UInt8], productID: UInt16, securityVersion: UInt16, debug: Bool,
        reportData: [UInt8], tcbStatus: TCBStatus, advisoryIDs: [String], platformTCBStatus: TCBStatus,
        qeTCBStatus: TCBStatus, fmspc: [UInt8], td: TDMeasurements?
    ) {
        self.tee = tee
        self.uniqueID = uniqueID
        self.signerID = signerID
        self.productID = productID
        self.securityVersion = securityVersion
        self.debug = debug
        self.reportData = reportData
        self.tcbStatus = tcbStatus
        self.advisoryIDs = advisoryIDs
        self.platformTCBStatus = platformTCBStatus
        self.qeTCBStatus = qeTCBStatus
        self.fmspc = fmspc
        self.td = td
    }
}
