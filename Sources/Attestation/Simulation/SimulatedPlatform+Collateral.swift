import Crypto
import Foundation
import JSONText
import X509

extension SimulatedPlatform {
    /// Signs TCB Info and QE Identity for SGX and for TDX (JSON text, r‖s signatures as Intel's
    /// PCS serves them) and issues both CRLs, which the two share.
    static func signCollateral(
        configuration: Configuration, root: Certificate, rootKey: P256.Signing.PrivateKey, pckCA: Certificate,
        pckCAKey: P256.Signing.PrivateKey, pck: Certificate, tcbSigning: Certificate, tcbKey: P256.Signing.PrivateKey,
        now: Date
    ) throws -> (sgx: Collateral, tdx: Collateral) {
        let issued = now.addingTimeInterval(-60)
        let next = now.addingTimeInterval(configuration.collateralValidity)
        let rootCACRL = try CRLBuilder.issue(
            issuer: root, key: rootKey, thisUpdate: issued, nextUpdate: next, revoked: [])
        let pckCRL = try CRLBuilder.issue(
            issuer: pckCA, key: pckCAKey, thisUpdate: issued, nextUpdate: next,
            revoked: configuration.revokePCK ? [pck.serialNumber] : [])
        let pckCRLChain = try [pckCA, root].map { try $0.serializeAsPEM().pemString + "\n" }.joined()
        func collateral(tcbInfo: [UInt8], qeIdentity: [UInt8]) throws -> Collateral {
            func sign(_ bytes: [UInt8]) throws -> [UInt8] {
                Array(try tcbKey.signature(for: SHA256.hash(data: bytes)).rawRepresentation)
            }
            return Collateral(
                rootCACRL: rootCACRL, pckCRL: pckCRL, pckCRLIssuerChainPEM: pckCRLChain,
                tcbInfo: .init(bytes: tcbInfo, signature: try sign(tcbInfo), document: try TCBInfo(jsonBytes: tcbInfo)),
                tcbInfoIssuerChain: [tcbSigning, root],
                qeIdentity: .init(
                    bytes: qeIdentity, signature: try sign(qeIdentity),
                    document: try EnclaveIdentity(jsonBytes: qeIdentity)),
                qeIdentityIssuerChain: [tcbSigning, root])
        }
        let sgx = try collateral(
            tcbInfo: tcbInfoJSON(configuration, id: "SGX", levels: configuration.tcbLevels, issued: issued, next: next),
            qeIdentity: qeIdentityJSON(
                id: "QE", mrSigner: qeMRSigner, productID: qeProductID, svn: configuration.qeSVN, issued: issued,
                next: next))
        let tdx = try collateral(
            tcbInfo: tcbInfoJSON(configuration, id: "TDX", levels: configuration.tdxLevels, issued: issued, next: next),
            qeIdentity: qeIdentityJSON(
                id: "TD_QE", mrSigner: tdQEMRSigner, productID: tdQEProductID, svn: configuration.tdQESVN,
                issued: issued, next: next))
        return (sgx, tdx)
    }

    static func timestamp(_ date: Date) -> JSONValue {
        let formatter = ISO8601DateFormatter()
        return .string(formatter.string(from: date))
    }

    static func hexValue(_ bytes: [UInt8]) -> JSONValue { .string(hexString(bytes)) }

    /// TCB Info version 3 with id `SGX` or `TDX`; a TDX one names the simulated TDX module
    /// (MRSIGNERSEAM zero, as Intel's is) and its identity `TDX_01`.
    static func tcbInfoJSON(
        _ configuration: Configuration, id: String, levels tcbLevels: [TCBInfo.Level], issued: Date, next: Date
    ) -> [UInt8] {
        let levels: [JSONValue] = tcbLevels.map { level in
            var tcb: [JSONMember] = [
                JSONMember(
                    "sgxtcbcomponents",
                    .array(level.sgxComponents.map { .object([JSONMember("svn", .number(String($0)))]) })),
                JSONMember("pcesvn", .number(String(level.pceSVN))),
            ]
            if let tdx = level.tdxComponents {
                tcb.append(
                    JSONMember(
                        "tdxtcbcomponents", .array(tdx.map { .object([JSONMember("svn", .number(String($0)))]) })))
            }
            var members = [
                JSONMember("tcb", .object(tcb)), JSONMember("tcbDate", timestamp(issued)),
                JSONMember("tcbStatus", .string(level.status.rawValue)),
            ]
            if !level.advisoryIDs.isEmpty {
                members.append(JSONMember("advisoryIDs", .array(level.advisoryIDs.map(JSONValue.string))))
            }
            return .object(members)
        }
        var members = [
            JSONMember("id", .string(id)), JSONMember("version", .number("3")),
            JSONMember("issueDate", timestamp(issued)),
            JSONMember("nextUpdate", timestamp(next)), JSONMember("fmspc", hexValue(configuration.fmspc)),
            JSONMember("pceId", hexValue(configuration.pceID)), JSONMember("tcbType", .number("0")),
            JSONMember("tcbEvaluationDataNumber", .number("1")),
        ]
        if id == "TDX" {
            let module = [
                JSONMember("mrsigner", hexValue(tdxModuleMRSigner)),
                JSONMember("attributes", .string("0000000000000000")),
                JSONMember("attributesMask", .string("FFFFFFFFFFFFFFFF")),
            ]
            members.append(JSONMember("tdxModule", .object(module)))
            let moduleLevels: [JSONValue] = configuration.tdxModuleLevels.map { level in
                var fields = [
                    JSONMember("tcb", .object([JSONMember("isvsvn", .number(String(level.isvSVN)))])),
                    JSONMember("tcbDate", timestamp(issued)), JSONMember("tcbStatus", .string(level.status.rawValue)),
                ]
                if !level.advisoryIDs.isEmpty {
                    fields.append(JSONMember("advisoryIDs", .array(level.advisoryIDs.map(JSONValue.string))))
                }
                return .object(fields)
            }
            members.append(
                JSONMember(
                    "tdxModuleIdentities",
                    .array([
                        .object(
                            [JSONMember("id", .string("TDX_01"))] + module + [
                                JSONMember("tcbLevels", .array(moduleLevels))
                            ])
                    ])))
        }
        members.append(JSONMember("tcbLevels", .array(levels)))
        return JSONValue.object(members).serialized()
    }

    /// MRSIGNERSEAM of the simulated TDX module: zero, as Intel signs its own modules.
    static let tdxModuleMRSigner = [UInt8](repeating: 0, count: 48)

    static func qeIdentityJSON(
        id: String, mrSigner: [UInt8], productID: UInt16, svn: UInt16, issued: Date, next: Date
    ) -> [UInt8] {
        JSONValue.object([
            JSONMember("id", .string(id)), JSONMember("version", .number("2")),
            JSONMember("issueDate", timestamp(issued)),
            JSONMember("nextUpdate", timestamp(next)), JSONMember("tcbEvaluationDataNumber", .number("1")),
            JSONMember("miscselect", .string("00000000")), JSONMember("miscselectMask", .string("FFFFFFFF")),
            JSONMember("attributes", .string("11000000000000000000000000000000")),
            JSONMember("attributesMask", .string("FBFFFFFFFFFFFFFF0000000000000000")),
            JSONMember("mrsigner", hexValue(mrSigner)), JSONMember("isvprodid", .number(String(productID))),
            JSONMember(
                "tcbLevels",
                .array([
                    .object([
                        JSONMember("tcb", .object([JSONMember("isvsvn", .number(String(svn)))])),
                        JSONMember("tcbDate", timestamp(issued)), JSONMember("tcbStatus", .string("UpToDate")),
                    ])
                ])),
        ]).serialized()
    }
}
