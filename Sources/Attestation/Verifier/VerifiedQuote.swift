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
}
