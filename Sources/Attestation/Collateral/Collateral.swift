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
    /// The PCK CRL's issuer chain as PEM text. Verification checks the CRL against the PCK CA of
    /// the (validated) chain in the quote, so this copy is kept, not parsed.
    public var pckCRLIssuerChainPEM: String
    public var tcbInfo: Signed<TCBInfo>
    public var tcbInfoIssuerChain: [Certificate]
    public var qeIdentity: Signed<EnclaveIdentity>
    public var qeIdentityIssuerChain: [Certificate]
    /// PCK leaf first, then its CA chain: for certification data types 1–4.
    public var pckCertificateChain: [Certificate]?

    public init(
        rootCACRL: CertificateRevocationList, pckCRL: CertificateRevocationList, pckCRLIssuerChainPEM: String,
        tcbInfo: Signed<TCBInfo>, tcbInfoIssuerChain: [Certificate], qeIdentity: Signed<EnclaveIdentity>,
        qeIdentityIssuerChain: [Certificate], pckCertificateChain: [Certificate]? = nil
    ) {
        self.rootCACRL = rootCACRL
        self.pckCRL = pckCRL
        self.pckCRLIssuerChainPEM = pckCRLIssuerChainPEM
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

    static func signed<Document: Sendable>(
        _ parse: ([UInt8]) throws(AttestationError) -> Document, bytes: [UInt8], signatureHex: String, name: String
    ) throws(AttestationError) -> Signed<Document> {
        guard let signature = Hex.decode(signatureHex), signature.count == 64 else {
            throw AttestationError(.malformedCollateral, "the \(name) signature is not 128 hex digits (r‖s)")
        }
        return Signed(bytes: bytes, signature: signature, document: try parse(bytes))
    }
}

extension Collateral {
    /// Reads the single-JSON-object form dcap-qvl uses (`QuoteCollateralV3`): PEM chains, hex
    /// CRLs, TCB Info and QE Identity as the exact signed JSON text, hex signatures.
    public init(dcapQVLBundle bytes: [UInt8]) throws(AttestationError) {
        var fields: [String: String] = [:]
        do {
            var reader = JSONReader(bytes)
            try reader.object { reader, key in
                if try reader.null() { return }
                fields[key] = try reader.string()
            }
            try reader.finish()
        } catch {
            throw AttestationError(
                .malformedCollateral, "the collateral bundle is not a JSON object of strings: \(error)")
        }
        func field(_ name: String) throws(AttestationError) -> String {
            guard let value = fields[name] else {
                throw AttestationError(.malformedCollateral, "the collateral bundle lacks \(name)")
            }
            return value
        }
        func crl(_ hex: String, _ name: String) throws(AttestationError) -> CertificateRevocationList {
            guard let der = Hex.decode(hex) else {
                throw AttestationError(.malformedCollateral, "the \(name) is not hex DER")
            }
            return try CertificateRevocationList(derEncoded: der)
        }
        // TCB Info and QE Identity are signed by the same chain: read it once when it is the same text.
        let tcbChainText = try field("tcb_info_issuer_chain")
        let qeChainText = try field("qe_identity_issuer_chain")
        let tcbChain = try PEMChain.certificates(in: tcbChainText)
        let qeChain = qeChainText == tcbChainText ? tcbChain : try PEMChain.certificates(in: qeChainText)
        self.init(
            rootCACRL: try crl(field("root_ca_crl"), "root CA CRL"),
            pckCRL: try crl(field("pck_crl"), "PCK CRL"),
            pckCRLIssuerChainPEM: try field("pck_crl_issuer_chain"),
            tcbInfo: try Self.signed(
                TCBInfo.init(jsonBytes:), bytes: Array(field("tcb_info").utf8),
                signatureHex: field("tcb_info_signature"), name: "TCB Info"),
            tcbInfoIssuerChain: tcbChain,
            qeIdentity: try Self.signed(
                EnclaveIdentity.init(jsonBytes:), bytes: Array(field("qe_identity").utf8),
                signatureHex: field("qe_identity_signature"), name: "QE Identity"),
            qeIdentityIssuerChain: qeChain)
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
        func signedMember<Document: Sendable>(
            _ parse: ([UInt8]) throws(AttestationError) -> Document, file: String, member: String
        ) throws(AttestationError) -> Signed<Document> {
            try Self.signedDocument(parse, from: read(file), member: member, name: file)
        }
        let tcbSignChain = try PEMChain.certificates(in: text("tcbSignChain.pem"))
        var pckChain: [Certificate]?
        if FileManager.default.fileExists(atPath: directory.appendingPathComponent("pckCert.pem").path) {
            pckChain = try PEMChain.certificates(in: text("pckCert.pem") + "\n" + text("pckSignChain.pem"))
        }
        self.init(
            rootCACRL: try CertificateRevocationList(derEncoded: read("rootCaCrl.der")),
            pckCRL: try CertificateRevocationList(derEncoded: read("intermediateCaCrl.der")),
            pckCRLIssuerChainPEM: try text("pckSignChain.pem"),
            tcbInfo: try signedMember(TCBInfo.init(jsonBytes:), file: "tcbInfo.json", member: "tcbInfo"),
            tcbInfoIssuerChain: tcbSignChain,
            qeIdentity: try signedMember(
                EnclaveIdentity.init(jsonBytes:), file: "qeIdentity.json", member: "enclaveIdentity"),
            qeIdentityIssuerChain: tcbSignChain,
            pckCertificateChain: pckChain)
    }
}

extension Collateral {
    /// Reads Intel's signed-document form, `{"<member>": {…}, "signature": "<hex r‖s>"}`, keeping
    /// the exact bytes of the member's value, over which the signature was made.
    public static func signedDocument<Document: Sendable>(
        _ parse: ([UInt8]) throws(AttestationError) -> Document, from bytes: [UInt8], member: String, name: String
    ) throws(AttestationError) -> Signed<Document> {
        let members: [(member: JSONMember, range: Range<Int>)]
        do {
            members = try JSONParser().topLevelMembers(bytes)
        } catch {
            throw AttestationError(.malformedCollateral, "the \(name) is not JSON: \(error)")
        }
        guard let body = members.last(where: { $0.member.key == member }),
            let signature = members.last(where: { $0.member.key == "signature" }),
            case .string(let signatureHex) = signature.member.value
        else {
            throw AttestationError(.malformedCollateral, "the \(name) lacks \"\(member)\" or \"signature\"")
        }
        return try signed(parse, bytes: Array(bytes[body.range]), signatureHex: signatureHex, name: name)
    }

    /// The collateral in dcap-qvl's single-object JSON form (``init(dcapQVLBundle:)`` reads it back).
    public func dcapQVLBundle() throws -> [UInt8] {
        func pem(_ chain: [Certificate]) throws -> String {
            try chain.map { try $0.serializeAsPEM().pemString + "\n" }.joined()
        }
        func hex(_ bytes: [UInt8]) -> String { hexString(bytes).lowercased() }
        let object: [String: String] = [
            "pck_crl_issuer_chain": pckCRLIssuerChainPEM,
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
