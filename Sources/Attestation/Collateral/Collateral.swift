import Foundation
import JSONText
import X509

/// Everything besides the quote that verification needs: CRLs, TCB Info and QE Identity with
/// their signatures and issuer chains, and (for quotes without a PEM chain) the PCK chain.
public struct Collateral: Sendable {
    /// A JSON document and Intel's signature (r‖s, 64 bytes) over its exact bytes.
    public struct Signed<Document: Sendable>: Sendable {
        public let bytes: [UInt8]
        public let signature: [UInt8]
        public let document: Document
    }

    public var rootCACRL: CertificateRevocationList
    /// The CRL of the PCK Processor or Platform CA that issued the PCK certificate.
    public var pckCRL: CertificateRevocationList
    public var pckCRLIssuerChain: [Certificate]
    public var tcbInfo: Signed<TCBInfo>
    public var tcbInfoIssuerChain: [Certificate]
    public var qeIdentity: Signed<EnclaveIdentity>
    public var qeIdentityIssuerChain: [Certificate]
    /// PCK leaf first, then its CA chain: for certification data types 1–4.
    public var pckCertificateChain: [Certificate]?

    public init(
        rootCACRL: CertificateRevocationList, pckCRL: CertificateRevocationList, pckCRLIssuerChain: [Certificate],
        tcbInfo: Signed<TCBInfo>, tcbInfoIssuerChain: [Certificate], qeIdentity: Signed<EnclaveIdentity>,
        qeIdentityIssuerChain: [Certificate], pckCertificateChain: [Certificate]? = nil
    ) {
        self.rootCACRL = rootCACRL
        self.pckCRL = pckCRL
        self.pckCRLIssuerChain = pckCRLIssuerChain
        self.tcbInfo = tcbInfo
        self.tcbInfoIssuerChain = tcbInfoIssuerChain
        self.qeIdentity = qeIdentity
        self.qeIdentityIssuerChain = qeIdentityIssuerChain
        self.pckCertificateChain = pckCertificateChain
    }

    /// The earliest `nextUpdate` of the TCB Info, QE Identity and CRLs: how long this collateral may be cached.
    public var nextUpdate: Date {
        [tcbInfo.document.nextUpdate, qeIdentity.document.nextUpdate, rootCACRL.nextUpdate, pckCRL.nextUpdate]
            .compactMap { $0 }.min() ?? tcbInfo.document.nextUpdate
    }

    static func signed<Document: Decodable & Sendable>(
        _ type: Document.Type, bytes: [UInt8], signatureHex: String, name: String
    ) throws(AttestationError) -> Signed<Document> {
        guard let signature = CollateralHex.bytes(signatureHex), signature.count == 64 else {
            throw AttestationError(.malformedCollateral, "the \(name) signature is not 128 hex digits (r‖s)")
        }
        do {
            return Signed(
                bytes: bytes, signature: signature, document: try JSONDecoder().decode(type, from: Data(bytes)))
        } catch {
            throw AttestationError(.malformedCollateral, "the \(name) does not parse: \(error)")
        }
    }
}

extension Collateral {
    /// Reads the single-JSON-object form dcap-qvl uses (`QuoteCollateralV3`): PEM chains, hex
    /// CRLs, TCB Info and QE Identity as the exact signed JSON text, hex signatures.
    public init(dcapQVLBundle bytes: [UInt8]) throws(AttestationError) {
        struct Bundle: Decodable {
            var pck_crl_issuer_chain: String
            var root_ca_crl: String
            var pck_crl: String
            var tcb_info_issuer_chain: String
            var tcb_info: String
            var tcb_info_signature: String
            var qe_identity_issuer_chain: String
            var qe_identity: String
            var qe_identity_signature: String
        }
        let bundle: Bundle
        do {
            bundle = try JSONDecoder().decode(Bundle.self, from: Data(bytes))
        } catch {
            throw AttestationError(.malformedCollateral, "the collateral bundle does not parse: \(error)")
        }
        func crl(_ hex: String, _ name: String) throws(AttestationError) -> CertificateRevocationList {
            guard let der = CollateralHex.bytes(hex) else {
                throw AttestationError(.malformedCollateral, "the \(name) is not hex DER")
            }
            return try CertificateRevocationList(derEncoded: der)
        }
        self.init(
            rootCACRL: try crl(bundle.root_ca_crl, "root CA CRL"),
            pckCRL: try crl(bundle.pck_crl, "PCK CRL"),
            pckCRLIssuerChain: try PEMChain.certificates(in: bundle.pck_crl_issuer_chain),
            tcbInfo: try Self.signed(
                TCBInfo.self, bytes: Array(bundle.tcb_info.utf8), signatureHex: bundle.tcb_info_signature,
                name: "TCB Info"),
            tcbInfoIssuerChain: try PEMChain.certificates(in: bundle.tcb_info_issuer_chain),
            qeIdentity: try Self.signed(
                EnclaveIdentity.self, bytes: Array(bundle.qe_identity.utf8), signatureHex: bundle.qe_identity_signature,
                name: "QE Identity"),
            qeIdentityIssuerChain: try PEMChain.certificates(in: bundle.qe_identity_issuer_chain))
    }

    /// Reads a folder in Intel PCS layout: `tcbInfo.json` (`{"tcbInfo":…,"signature":…}`),
    /// `qeIdentity.json` (`{"enclaveIdentity":…,"signature":…}`), `tcbSignChain.pem`,
    /// `rootCaCrl.der`, `intermediateCaCrl.der` (the PCK CA's CRL) and `pckSignChain.pem`
    /// (its issuer chain), plus `pckCert.pem` when quotes carry no PEM chain.
    public init(pcsDirectory directory: URL) throws(AttestationError) {
        func read(_ name: String) throws(AttestationError) -> [UInt8] {
            do {
                return Array(try Data(contentsOf: directory.appendingPathComponent(name)))
            } catch {
                throw AttestationError(.malformedCollateral, "cannot read \(name) in \(directory.path)")
            }
        }
        func text(_ name: String) throws(AttestationError) -> String {
            String(decoding: try read(name), as: UTF8.self)
        }
        func signedMember<Document: Decodable & Sendable>(_ type: Document.Type, file: String, member: String)
            throws(AttestationError) -> Signed<Document>
        {
            let bytes = try read(file)
            let members: [(member: JSONMember, range: Range<Int>)]
            do {
                members = try JSONParser().topLevelMembers(bytes)
            } catch {
                throw AttestationError(.malformedCollateral, "\(file) is not JSON: \(error)")
            }
            guard let body = members.first(where: { $0.member.key == member }),
                let signature = members.first(where: { $0.member.key == "signature" }),
                case .string(let signatureHex) = signature.member.value
            else {
                throw AttestationError(.malformedCollateral, "\(file) lacks \"\(member)\" or \"signature\"")
            }
            return try Self.signed(type, bytes: Array(bytes[body.range]), signatureHex: signatureHex, name: file)
        }
        let pckSignChain = try PEMChain.certificates(in: text("pckSignChain.pem"))
        let tcbSignChain = try PEMChain.certificates(in: text("tcbSignChain.pem"))
        var pckChain: [Certificate]?
        if FileManager.default.fileExists(atPath: directory.appendingPathComponent("pckCert.pem").path) {
            pckChain = try PEMChain.certificates(in: text("pckCert.pem")) + pckSignChain
        }
        self.init(
            rootCACRL: try CertificateRevocationList(derEncoded: read("rootCaCrl.der")),
            pckCRL: try CertificateRevocationList(derEncoded: read("intermediateCaCrl.der")),
            pckCRLIssuerChain: pckSignChain,
            tcbInfo: try signedMember(TCBInfo.self, file: "tcbInfo.json", member: "tcbInfo"),
            tcbInfoIssuerChain: tcbSignChain,
            qeIdentity: try signedMember(EnclaveIdentity.self, file: "qeIdentity.json", member: "enclaveIdentity"),
            qeIdentityIssuerChain: tcbSignChain,
            pckCertificateChain: pckChain)
    }
}

extension Collateral {
    /// The collateral in dcap-qvl's single-object JSON form (``init(dcapQVLBundle:)`` reads it back).
    public func dcapQVLBundle() throws -> [UInt8] {
        func pem(_ chain: [Certificate]) throws -> String {
            try chain.map { try $0.serializeAsPEM().pemString + "\n" }.joined()
        }
        func hex(_ bytes: [UInt8]) -> String { hexString(bytes).lowercased() }
        let object: [String: String] = [
            "pck_crl_issuer_chain": try pem(pckCRLIssuerChain),
            "root_ca_crl": hex(rootCACRL.der),
            "pck_crl": hex(pckCRL.der),
            "tcb_info_issuer_chain": try pem(tcbInfoIssuerChain),
            "tcb_info": String(decoding: tcbInfo.bytes, as: UTF8.self),
            "tcb_info_signature": hex(tcbInfo.signature),
            "qe_identity_issuer_chain": try pem(qeIdentityIssuerChain),
            "qe_identity": String(decoding: qeIdentity.bytes, as: UTF8.self),
            "qe_identity_signature": hex(qeIdentity.signature),
        ]
        return Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }
}
