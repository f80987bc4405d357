import Crypto
import Foundation
import JSONText
import X509

extension SimulatedPlatform {
    /// Signs TCB Info and QE Identity (JSON text, r‖s signatures as Intel's PCS serves them) and issues both CRLs.
    static func signCollateral(
        configuration: Configuration, root: Certificate, rootKey: P256.Signing.PrivateKey, pckCA: Certificate,
        pckCAKey: P256.Signing.PrivateKey, pck: Certificate, tcbSigning: Certificate, tcbKey: P256.Signing.PrivateKey,
        now: Date
    ) throws -> Collateral {
        let issued = now.addingTimeInterval(-60)
        let next = now.addingTimeInterval(configuration.collateralValidity)
        let tcbInfoBytes = tcbInfoJSON(configuration, issued: issued, next: next)
        let qeIdentityBytes = qeIdentityJSON(configuration, issued: issued, next: next)
        func sign(_ bytes: [UInt8]) -> [UInt8] {
            Array((try! tcbKey.signature(for: SHA256.hash(data: bytes))).rawRepresentation)
        }
        return Collateral(
            rootCACRL: try CRLBuilder.issue(
                issuer: root, key: rootKey, thisUpdate: issued, nextUpdate: next, revoked: []),
            pckCRL: try CRLBuilder.issue(
                issuer: pckCA, key: pckCAKey, thisUpdate: issued, nextUpdate: next,
                revoked: configuration.revokePCK ? [pck.serialNumber] : []),
            pckCRLIssuerChainPEM: try [pckCA, root].map { try $0.serializeAsPEM().pemString + "\n" }.joined(),
            tcbInfo: .init(
                bytes: tcbInfoBytes, signature: sign(tcbInfoBytes),
                document: try TCBInfo(jsonBytes: tcbInfoBytes)),
            tcbInfoIssuerChain: [tcbSigning, root],
            qeIdentity: .init(
                bytes: qeIdentityBytes, signature: sign(qeIdentityBytes),
                document: try EnclaveIdentity(jsonBytes: qeIdentityBytes)),
            qeIdentityIssuerChain: [tcbSigning, root])
    }

    static func timestamp(_ date: Date) -> JSONValue {
        let formatter = ISO8601DateFormatter()
        return .string(formatter.string(from: date))
    }

    static func hexValue(_ bytes: [UInt8]) -> JSONValue { .string(hexString(bytes)) }

    static func tcbInfoJSON(_ configuration: Configuration, issued: Date, next: Date) -> [UInt8] {
        let levels: [JSONValue] = configuration.tcbLevels.map { level in
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
        return JSONValue.object([
            JSONMember("id", .string("SGX")), JSONMember("version", .number("3")),
            JSONMember("issueDate", timestamp(issued)),
            JSONMember("nextUpdate", timestamp(next)), JSONMember("fmspc", hexValue(configuration.fmspc)),
            JSONMember("pceId", hexValue(configuration.pceID)), JSONMember("tcbType", .number("0")),
            JSONMember("tcbEvaluationDataNumber", .number("1")), JSONMember("tcbLevels", .array(levels)),
        ]).serialized()
    }

    static func qeIdentityJSON(_ configuration: Configuration, issued: Date, next: Date) -> [UInt8] {
        JSONValue.object([
            JSONMember("id", .string("QE")), JSONMember("version", .number("2")),
            JSONMember("issueDate", timestamp(issued)),
            JSONMember("nextUpdate", timestamp(next)), JSONMember("tcbEvaluationDataNumber", .number("1")),
            JSONMember("miscselect", .string("00000000")), JSONMember("miscselectMask", .string("FFFFFFFF")),
            JSONMember("attributes", .string("11000000000000000000000000000000")),
            JSONMember("attributesMask", .string("FBFFFFFFFFFFFFFF0000000000000000")),
            JSONMember("mrsigner", hexValue(qeMRSigner)), JSONMember("isvprodid", .number(String(qeProductID))),
            JSONMember(
                "tcbLevels",
                .array([
                    .object([
                        JSONMember("tcb", .object([JSONMember("isvsvn", .number(String(configuration.qeSVN)))])),
                        JSONMember("tcbDate", timestamp(issued)), JSONMember("tcbStatus", .string("UpToDate")),
                    ])
                ])),
        ]).serialized()
    }
}
