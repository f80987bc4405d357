import Crypto
import Foundation
import JSONText
import SwiftASN1
import X509

/// An SGX and TDX platform in software: a test root CA, PCK CA, a PCK certificate with a real SGX
/// extension, a TCB signing certificate, signed TCB Info and QE Identity for SGX and for TDX,
/// CRLs, and a QE attestation key. Its quotes are structurally real SGX v3 and TDX v4 quotes
/// that ``QuoteVerifier`` checks on the same path as Intel's, with this platform's root as the
/// trust anchor.
///
/// It gives no security: anyone with the directory can issue quotes for any enclave.
public struct SimulatedPlatform: Sendable {
    /// What the platform looks like; tests vary it to produce outdated or revoked platforms.
    public struct Configuration: Sendable {
        public var fmspc: [UInt8] = [0x00, 0x90, 0x6E, 0xD5, 0x00, 0x00]
        public var pceID: [UInt8] = [0x00, 0x00]
        /// The platform's SGX TCB components and PCE SVN, as its PCK certificate states them.
        public var tcbComponents: [UInt8] = [4, 4, 3, 3, 255, 255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        public var pceSVN: UInt16 = 13
        public var qeSVN: UInt16 = 8
        /// TCB levels of the signed TCB Info, highest first.
        public var tcbLevels: [TCBInfo.Level] = Configuration.defaultLevels
        /// How long the certificates are valid.
        public var certificateValidity: TimeInterval = 10 * 365 * 86_400
        /// How long the TCB Info, QE Identity and CRLs are valid.
        public var collateralValidity: TimeInterval = 365 * 86_400
        /// Put the PCK certificate on the PCK CA's CRL.
        public var revokePCK = false
        /// TEE_TCB_SVN of the platform's trust domains: byte 0 is the TDX module's SVN, byte 1 its
        /// major version (0: no module identity applies), byte 2 the TDX microcode's SVN.
        public var teeTCBSVN: [UInt8] = [4, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        /// The ISVSVN of the TD quoting enclave.
        public var tdQESVN: UInt16 = 4
        /// TCB levels of the signed TDX TCB Info, highest first.
        public var tdxLevels: [TCBInfo.Level] = Configuration.defaultTDXLevels
        /// TCB levels of the TDX module identity `TDX_01` (module major version 1), highest first.
        public var tdxModuleLevels: [TCBInfo.ModuleLevel] = Configuration.defaultTDXModuleLevels

        public init() {}

        public static let defaultLevels: [TCBInfo.Level] = [
            TCBInfo.Level(
                sgxComponents: [4, 4, 3, 3, 255, 255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0], tdxComponents: nil, pceSVN: 13,
                status: .upToDate, advisoryIDs: []),
            TCBInfo.Level(
                sgxComponents: [2, 2, 2, 2, 255, 255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0], tdxComponents: nil, pceSVN: 11,
                status: .outOfDate, advisoryIDs: ["INTEL-SA-00615"]),
        ]

        /// As Intel publishes them: the TDX components' bytes 0 and 1 (the module's SVN and major
        /// version) are rated by the module identity, not by these levels.
        public static let defaultTDXLevels: [TCBInfo.Level] = [
            TCBInfo.Level(
                sgxComponents: [4, 4, 3, 3, 255, 255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                tdxComponents: [3, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], pceSVN: 13, status: .upToDate,
                advisoryIDs: []),
            TCBInfo.Level(
                sgxComponents: [2, 2, 2, 2, 255, 255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                tdxComponents: [2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], pceSVN: 11, status: .outOfDate,
                advisoryIDs: ["INTEL-SA-01036"]),
        ]

        public static let defaultTDXModuleLevels: [TCBInfo.ModuleLevel] = [
            TCBInfo.ModuleLevel(isvSVN: 4, status: .upToDate, advisoryIDs: []),
            TCBInfo.ModuleLevel(isvSVN: 2, status: .outOfDate, advisoryIDs: ["INTEL-SA-01099"]),
        ]
    }

    /// The simulated quoting enclave's identity (its MRSIGNER is a fixed, obviously fake value).
    static let qeMRSigner = Array(SHA256.hash(data: Array("marblerun-swift simulated quoting enclave".utf8)))
    static let qeProductID: UInt16 = 1
    /// The simulated TD quoting enclave's identity (Intel's TD QE has ISVPRODID 2, as here).
    static let tdQEMRSigner = Array(SHA256.hash(data: Array("marblerun-swift simulated TD quoting enclave".utf8)))
    static let tdQEProductID: UInt16 = 2

    public let configuration: Configuration
    public let rootCertificate: Certificate
    let rootKey: P256.Signing.PrivateKey
    public let pckCACertificate: Certificate
    let pckCAKey: P256.Signing.PrivateKey
    public let pckCertificate: Certificate
    let pckKey: P256.Signing.PrivateKey
    public let tcbSigningCertificate: Certificate
    let tcbSigningKey: P256.Signing.PrivateKey
    let attestationKey: P256.Signing.PrivateKey
    /// The default enclave signing key (SignerID) of marbles in this simulation.
    public let enclaveSigningKey: P256.Signing.PrivateKey
    /// SGX collateral: the TCB Info and QE Identity for SGX enclaves' quotes.
    public let collateral: Collateral
    /// TDX collateral: the TDX TCB Info (with the TDX module identities) and the TD QE Identity.
    public let tdxCollateral: Collateral

    /// A new platform with fresh keys, valid from `now`.
    public static func generate(configuration: Configuration = Configuration(), now: Date = Date()) throws
        -> SimulatedPlatform
    {
        let rootKey = P256.Signing.PrivateKey()
        let pckCAKey = P256.Signing.PrivateKey()
        let pckKey = P256.Signing.PrivateKey()
        let tcbKey = P256.Signing.PrivateKey()
        let notBefore = now.addingTimeInterval(-3600)
        let notAfter = now.addingTimeInterval(configuration.certificateValidity)
        let rootName = try DistinguishedName {
            CommonName("Simulated SGX Root CA (INSECURE)")
            OrganizationName("marblerun-swift simulation")
        }
        let root = try Self.certificate(
            subject: rootName, key: rootKey.publicKey, issuer: rootName, issuerKey: rootKey, isCA: true,
            from: notBefore, to: notAfter)
        let pckCAName = try DistinguishedName {
            CommonName("Simulated SGX PCK Processor CA (INSECURE)")
            OrganizationName("marblerun-swift simulation")
        }
        let pckCA = try Self.certificate(
            subject: pckCAName, key: pckCAKey.publicKey, issuer: rootName, issuerKey: rootKey, isCA: true,
            from: notBefore, to: notAfter)
        let pckExtension = PCKExtension(
            ppid: Array(SHA256.hash(data: pckKey.publicKey.rawRepresentation).prefix(16)),
            tcbComponents: configuration.tcbComponents, pceSVN: configuration.pceSVN,
            cpuSVN: configuration.tcbComponents,
            pceID: configuration.pceID, fmspc: configuration.fmspc, sgxType: 0)
        let pck = try Self.certificate(
            subject: DistinguishedName { CommonName("Simulated SGX PCK Certificate (INSECURE)") },
            key: pckKey.publicKey,
            issuer: pckCAName, issuerKey: pckCAKey, isCA: false, from: notBefore, to: notAfter,
            extra: [try pckExtension.certificateExtension()])
        let tcbSigning = try Self.certificate(
            // The subject QVL requires of a TCB signer; the root above it says it is simulated.
            subject: QuoteVerifier.tcbSigningSubject, key: tcbKey.publicKey,
            issuer: rootName, issuerKey: rootKey, isCA: false, from: notBefore, to: notAfter)
        let signed = try Self.signCollateral(
            configuration: configuration, root: root, rootKey: rootKey, pckCA: pckCA, pckCAKey: pckCAKey, pck: pck,
            tcbSigning: tcbSigning, tcbKey: tcbKey, now: now)
        return SimulatedPlatform(
            configuration: configuration, rootCertificate: root, rootKey: rootKey, pckCACertificate: pckCA,
            pckCAKey: pckCAKey,
            pckCertificate: pck, pckKey: pckKey, tcbSigningCertificate: tcbSigning, tcbSigningKey: tcbKey,
            attestationKey: P256.Signing.PrivateKey(), enclaveSigningKey: P256.Signing.PrivateKey(),
            collateral: signed.sgx, tdxCollateral: signed.tdx)
    }

    /// The same platform with TCB Info, QE Identity and CRLs issued anew at `now`.
    public func refreshingCollateral(at now: Date, configuration newConfiguration: Configuration? = nil) throws
        -> SimulatedPlatform
    {
        let configuration = newConfiguration ?? self.configuration
        let signed = try Self.signCollateral(
            configuration: configuration, root: rootCertificate, rootKey: rootKey, pckCA: pckCACertificate,
            pckCAKey: pckCAKey,
            pck: pckCertificate, tcbSigning: tcbSigningCertificate, tcbKey: tcbSigningKey, now: now)
        return SimulatedPlatform(
            configuration: configuration, rootCertificate: rootCertificate, rootKey: rootKey,
            pckCACertificate: pckCACertificate,
            pckCAKey: pckCAKey, pckCertificate: pckCertificate, pckKey: pckKey,
            tcbSigningCertificate: tcbSigningCertificate,
            tcbSigningKey: tcbSigningKey, attestationKey: attestationKey, enclaveSigningKey: enclaveSigningKey,
            collateral: signed.sgx, tdxCollateral: signed.tdx)
    }

    /// A verifier that trusts this platform's root.
    public var verifier: QuoteVerifier { QuoteVerifier(trustedRoot: rootCertificate) }

    /// The collateral of `quote`: TDX collateral for a TD's quote, SGX collateral otherwise.
    public func collateral(for quote: Quote) -> Collateral { quote.isTDX ? tdxCollateral : collateral }

    /// This platform's collateral for every quote it issues, SGX and TDX.
    public var collateralProvider: StaticCollateralProvider { StaticCollateralProvider(collateral, tdx: tdxCollateral) }

    /// The signing configuration of marbles that give none.
    public var defaultSigner: EnclaveSigner { EnclaveSigner(signingKey: enclaveSigningKey) }

    static func certificate(
        subject: DistinguishedName, key: P256.Signing.PublicKey, issuer: DistinguishedName,
        issuerKey: P256.Signing.PrivateKey,
        isCA: Bool, from: Date, to: Date, extra: [Certificate.Extension] = []
    ) throws -> Certificate {
        var extensions = try Certificate.Extensions {
            Critical(
                isCA
                    ? BasicConstraints.isCertificateAuthority(maxPathLength: nil)
                    : BasicConstraints.notCertificateAuthority)
            Critical(
                isCA
                    ? KeyUsage(keyCertSign: true, cRLSign: true)
                    : KeyUsage(digitalSignature: true, nonRepudiation: true))
        }
        for item in extra { try extensions.append(item) }
        return try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: Certificate.PublicKey(key),
            notValidBefore: from,
            notValidAfter: to, issuer: issuer, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions,
            issuerPrivateKey: Certificate.PrivateKey(issuerKey))
    }
}
