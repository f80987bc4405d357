import Crypto
import Foundation
import CoordinatorTesting
import Testing
import X509

@testable import Attestation

/// TCB Info and QE Identity are trusted only from Intel's TCB Signing certificate under the
/// pinned root (QVL's TCB signing chain), and only in the versions and kinds QVL knows.
@Suite struct CollateralSignerTests {
    static let now = Date()
    static let enclave = SimulatedEnclave(
        uniqueID: Array(SHA256.hash(data: Array("marble".utf8))), signerID: Array(SHA256.hash(data: Array("s".utf8))))

    static func verdict(_ platform: SimulatedPlatform, _ collateral: Collateral) -> AttestationError.Code? {
        do {
            let quote = try Quote(parsing: platform.quote(reportData: [], enclave: enclave))
            _ = try platform.verifier.verify(quote, collateral: collateral, at: now)
            return nil
        } catch let error as AttestationError {
            return error.code
        } catch {
            return AttestationError.Code(rawValue: "unexpected: \(error)")
        }
    }

    static func sign(_ bytes: [UInt8], _ key: P256.Signing.PrivateKey) throws -> [UInt8] {
        Array(try key.signature(for: SHA256.hash(data: bytes)).rawRepresentation)
    }

    /// The platform's collateral with the TCB Info re-signed by `key` under `chain`.
    static func tcbInfo(
        of platform: SimulatedPlatform, signedBy key: P256.Signing.PrivateKey, chain: [Certificate],
        bytes: [UInt8]? = nil
    ) throws -> Collateral {
        var collateral = platform.collateral
        let text = bytes ?? collateral.tcbInfo.bytes
        collateral.tcbInfo = .init(bytes: text, signature: try sign(text, key), document: try TCBInfo(jsonBytes: text))
        collateral.tcbInfoIssuerChain = chain
        return collateral
    }

    static func qeIdentity(
        of platform: SimulatedPlatform, signedBy key: P256.Signing.PrivateKey, chain: [Certificate],
        bytes: [UInt8]? = nil
    ) throws -> Collateral {
        var collateral = platform.collateral
        let text = bytes ?? collateral.qeIdentity.bytes
        collateral.qeIdentity = .init(
            bytes: text, signature: try sign(text, key), document: try EnclaveIdentity(jsonBytes: text))
        collateral.qeIdentityIssuerChain = chain
        return collateral
    }

    static func replacing(_ old: String, with new: String, in bytes: [UInt8]) throws -> [UInt8] {
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains(old), "the simulated document holds \(old)")
        return Array(text.replacingOccurrences(of: old, with: new).utf8)
    }

    @Test func theSimulatedPlatformsOwnSignerIsAccepted() throws {
        let platform = try SimulatedPlatform.generate(now: Self.now)
        #expect(Self.verdict(platform, platform.collateral) == nil)
        let resigned = try Self.tcbInfo(
            of: platform, signedBy: platform.tcbSigningKey, chain: [platform.tcbSigningCertificate])
        #expect(Self.verdict(platform, resigned) == nil, "the root may be left out of the chain")
    }

    @Test func tcbInfoSignedByThePCKCertificateIsRefused() throws {
        let platform = try SimulatedPlatform.generate(now: Self.now)
        let forged = try Self.tcbInfo(
            of: platform, signedBy: platform.pckKey,
            chain: [platform.pckCertificate, platform.pckCACertificate, platform.rootCertificate])
        #expect(Self.verdict(platform, forged) == .collateralSigner)
        let short = try Self.tcbInfo(
            of: platform, signedBy: platform.pckKey, chain: [platform.pckCertificate, platform.pckCACertificate])
        #expect(Self.verdict(platform, short) == .collateralSigner)
    }

    @Test func tcbInfoSignedByThePCKCAIsRefused() throws {
        let platform = try SimulatedPlatform.generate(now: Self.now)
        let forged = try Self.tcbInfo(
            of: platform, signedBy: platform.pckCAKey, chain: [platform.pckCACertificate, platform.rootCertificate])
        #expect(Self.verdict(platform, forged) == .collateralSigner)
    }

    @Test func qeIdentitySignedByThePCKCertificateOrCAIsRefused() throws {
        let platform = try SimulatedPlatform.generate(now: Self.now)
        let byLeaf = try Self.qeIdentity(
            of: platform, signedBy: platform.pckKey,
            chain: [platform.pckCertificate, platform.pckCACertificate, platform.rootCertificate])
        #expect(Self.verdict(platform, byLeaf) == .collateralSigner)
        let byCA = try Self.qeIdentity(
            of: platform, signedBy: platform.pckCAKey, chain: [platform.pckCACertificate, platform.rootCertificate])
        #expect(Self.verdict(platform, byCA) == .collateralSigner)
    }

    @Test func aSignerWithIntelsNameButTheWrongShapeIsRefused() throws {
        let platform = try SimulatedPlatform.generate(now: Self.now)
        let key = P256.Signing.PrivateKey()
        let name = QuoteVerifier.tcbSigningSubject
        let rootName = platform.rootCertificate.subject
        let asCA = try SimulatedPlatform.certificate(
            subject: name, key: key.publicKey, issuer: rootName, issuerKey: platform.rootKey, isCA: true,
            from: Self.now.addingTimeInterval(-60), to: Self.now.addingTimeInterval(3600))
        let collateral = try Self.tcbInfo(of: platform, signedBy: key, chain: [asCA, platform.rootCertificate])
        #expect(Self.verdict(platform, collateral) == .collateralSigner, "a CA is no TCB signer")
        let underPCKCA = try SimulatedPlatform.certificate(
            subject: name, key: key.publicKey, issuer: platform.pckCACertificate.subject, issuerKey: platform.pckCAKey,
            isCA: false, from: Self.now.addingTimeInterval(-60), to: Self.now.addingTimeInterval(3600))
        let below = try Self.tcbInfo(
            of: platform, signedBy: key, chain: [underPCKCA, platform.pckCACertificate, platform.rootCertificate])
        #expect(Self.verdict(platform, below) == .collateralSigner, "the TCB signer is issued by the root itself")
        let otherName = try SimulatedPlatform.certificate(
            subject: DistinguishedName { CommonName("Intel SGX TCB Signing") }, key: key.publicKey, issuer: rootName,
            issuerKey: platform.rootKey, isCA: false, from: Self.now.addingTimeInterval(-60),
            to: Self.now.addingTimeInterval(3600))
        let renamed = try Self.tcbInfo(of: platform, signedBy: key, chain: [otherName, platform.rootCertificate])
        #expect(Self.verdict(platform, renamed) == .collateralSigner, "the whole subject must be Intel's")
    }

    @Test func theErrorNamesTheSigner() throws {
        let platform = try SimulatedPlatform.generate(now: Self.now)
        let forged = try Self.tcbInfo(
            of: platform, signedBy: platform.pckKey,
            chain: [platform.pckCertificate, platform.pckCACertificate, platform.rootCertificate])
        let quote = try Quote(parsing: platform.quote(reportData: [], enclave: Self.enclave))
        #expect {
            _ = try platform.verifier.verify(quote, collateral: forged, at: Self.now)
        } throws: { error in
            let message = (error as? AttestationError)?.message ?? ""
            return message.contains("Simulated SGX PCK Certificate") && message.contains("TCB Info")
        }
    }

    @Test func qeIdentityOfTheOtherTEEIsRefused() throws {
        let platform = try SimulatedPlatform.generate(now: Self.now)
        let bytes = try Self.replacing(
            "\"id\":\"QE\"", with: "\"id\":\"TD_QE\"", in: platform.collateral.qeIdentity.bytes)
        let collateral = try Self.qeIdentity(
            of: platform, signedBy: platform.tcbSigningKey, chain: platform.collateral.qeIdentityIssuerChain,
            bytes: bytes)
        #expect(Self.verdict(platform, collateral) == .collateralMismatch)
    }

    @Test(arguments: [
        ("\"id\":\"QE\"", "\"id\":\"QAE\""), ("\"version\":2", "\"version\":3"), ("\"id\":\"QE\",", ""),
    ])
    func unknownQEIdentityKindsAreRefused(change: (String, String)) throws {
        let platform = try SimulatedPlatform.generate(now: Self.now)
        let bytes = try Self.replacing(change.0, with: change.1, in: platform.collateral.qeIdentity.bytes)
        let collateral = try Self.qeIdentity(
            of: platform, signedBy: platform.tcbSigningKey, chain: platform.collateral.qeIdentityIssuerChain,
            bytes: bytes)
        #expect(Self.verdict(platform, collateral) == .malformedCollateral)
    }

    @Test(arguments: [
        ("\"version\":3", "\"version\":4"), ("\"tcbType\":0", "\"tcbType\":1"), ("\"tcbType\":0,", ""),
        ("\"id\":\"SGX\"", "\"id\":\"SEV\""), ("\"id\":\"SGX\",", ""),
    ])
    func unknownTCBInfoKindsAreRefused(change: (String, String)) throws {
        let platform = try SimulatedPlatform.generate(now: Self.now)
        let bytes = try Self.replacing(change.0, with: change.1, in: platform.collateral.tcbInfo.bytes)
        let collateral = try Self.tcbInfo(
            of: platform, signedBy: platform.tcbSigningKey, chain: platform.collateral.tcbInfoIssuerChain, bytes: bytes)
        #expect(Self.verdict(platform, collateral) == .malformedCollateral)
    }

    @Test func bytesAfterTheSignatureDataAreRefusedUnlessZeroPadding() throws {
        let platform = try SimulatedPlatform.generate(now: Self.now)
        let quote = try platform.quote(reportData: [], enclave: Self.enclave)
        #expect(throws: AttestationError(.malformedQuote, "")) { try Quote(parsing: quote + [1]) }
        #expect(throws: AttestationError(.malformedQuote, "")) { try Quote(parsing: quote + [0, 0, 0, 7]) }
        let padded = try Quote(parsing: quote + [UInt8](repeating: 0, count: 70))
        _ = try platform.verifier.verify(padded, collateral: platform.collateral, at: Self.now)
        let wrapped: (Int, [UInt8]) -> [UInt8] = { size, tail in
            var header: [UInt8] = [1, 0, 0, 0, 2, 0, 0, 0]
            header += withUnsafeBytes(of: UInt64(size).littleEndian, Array.init)
            return header + quote + tail
        }
        _ = try Quote(parsing: wrapped(quote.count, []))
        #expect(throws: AttestationError(.malformedQuote, "")) { try Quote(parsing: wrapped(quote.count, [9])) }
    }

    @Test func aVersion5BodyMustMatchItsTEEType() throws {
        func header(tee: UInt32) -> [UInt8] {
            var bytes: [UInt8] = [5, 0, 2, 0]
            bytes += withUnsafeBytes(of: tee.littleEndian, Array.init)
            bytes += [UInt8](repeating: 0, count: 4) + Quote.intelQEVendorID + [UInt8](repeating: 0, count: 20)
            return bytes
        }
        let sgxBody: [UInt8] = [1, 0] + withUnsafeBytes(of: UInt32(384).littleEndian, Array.init)
        let tail = [UInt8](repeating: 0, count: 384 + 4)
        #expect(throws: AttestationError(.malformedQuote, "")) {
            try Quote(parsing: header(tee: Quote.teeTypeTDX) + sgxBody + tail)
        }
        // The same body in an SGX quote gets past the body (and stops at the empty signature data).
        #expect(throws: AttestationError(.truncated, "")) {
            try Quote(parsing: header(tee: Quote.teeTypeSGX) + sgxBody + tail)
        }
    }

    @Test func realCollateralSignersStillVerify() throws {
        for name in ["sgx_quote", "tdx_quote"] {
            let collateral = try Collateral(dcapQVLBundle: TestData.bytes("dcap/dcap-qvl/\(name)_collateral.json"))
            let signer = try QuoteVerifier.tcbSigner(
                in: collateral.tcbInfoIssuerChain, root: TrustAnchors.intelSGXRootCA, name: "TCB Info")
            #expect(signer.subject == QuoteVerifier.tcbSigningSubject)
        }
    }
}
