import SwiftASN1
import X509

/// Intel's SGX extension of a PCK certificate (OID 1.2.840.113741.1.13.1): the platform's
/// TCB components, PCE SVN, PCE ID and FMSPC, which select its TCB level.
public struct PCKExtension: Sendable, Hashable {
    public static let oid: ASN1ObjectIdentifier = [1, 2, 840, 113741, 1, 13, 1]

    public var ppid: [UInt8]
    /// SGX TCB components 1–16 (each a byte).
    public var tcbComponents: [UInt8]
    public var pceSVN: UInt16
    public var cpuSVN: [UInt8]
    public var pceID: [UInt8]
    public var fmspc: [UInt8]
    /// 0 Standard, 1 Scalable, 2 Scalable with integrity.
    public var sgxType: Int

    public init(
        ppid: [UInt8], tcbComponents: [UInt8], pceSVN: UInt16, cpuSVN: [UInt8], pceID: [UInt8], fmspc: [UInt8],
        sgxType: Int
    ) {
        self.ppid = ppid
        self.tcbComponents = tcbComponents
        self.pceSVN = pceSVN
        self.cpuSVN = cpuSVN
        self.pceID = pceID
        self.fmspc = fmspc
        self.sgxType = sgxType
    }

    /// Reads the extension of a PCK certificate.
    public init(certificate: Certificate) throws(AttestationError) {
        guard let ext = certificate.extensions.first(where: { $0.oid == Self.oid }) else {
            throw AttestationError(.pckExtension, "the PCK certificate has no SGX extension (1.2.840.113741.1.13.1)")
        }
        do {
            let fields = try Self.fields(of: DER.parse(ext.value))
            func field(_ last: UInt8) throws -> ASN1Node {
                guard let node = fields[last] else {
                    throw AttestationError(.pckExtension, "the SGX extension lacks field 1.2.840.113741.1.13.1.\(last)")
                }
                return node
            }
            ppid = Array(try ASN1OctetString(derEncoded: field(1)).bytes)
            let tcb = try Self.fields(of: field(2), under: Self.oidContent + [0x02])
            var components: [UInt8] = []
            for index in UInt8(1)...16 {
                guard let node = tcb[index] else {
                    throw AttestationError(.pckExtension, "the SGX extension lacks TCB component \(index)")
                }
                components.append(try UInt8(derEncoded: node))
            }
            tcbComponents = components
            guard let pce = tcb[17], let cpu = tcb[18] else {
                throw AttestationError(.pckExtension, "the SGX extension lacks the PCE SVN or CPU SVN")
            }
            pceSVN = try UInt16(derEncoded: pce)
            cpuSVN = Array(try ASN1OctetString(derEncoded: cpu).bytes)
            pceID = Array(try ASN1OctetString(derEncoded: field(3)).bytes)
            fmspc = Array(try ASN1OctetString(derEncoded: field(4)).bytes)
            let typeNode = try field(5)
            guard case .primitive(let typeBytes) = typeNode.content, typeBytes.count == 1 else {
                throw AttestationError(.pckExtension, "the SGX type is not a small ENUMERATED")
            }
            sgxType = Int(typeBytes.first!)
        } catch let error as AttestationError {
            throw error
        } catch {
            throw AttestationError(.pckExtension, "the SGX extension does not parse: \(error)")
        }
        guard fmspc.count == 6, pceID.count == 2, cpuSVN.count == 16 else {
            throw AttestationError(.pckExtension, "the SGX extension has an FMSPC, PCE ID or CPU SVN of the wrong size")
        }
    }

    /// The content bytes of this extension's OID, which prefix every field's OID.
    private static let oidContent: [UInt8] = {
        var serializer = DER.Serializer()
        try! serializer.serialize(oid)
        return Array(serializer.serializedBytes.dropFirst(2))  // tag and one-byte length
    }()

    /// SEQUENCE OF SEQUENCE { OID, value } keyed by the OID's arcs after `prefix` (one small arc
    /// each, as Intel defines them). Compares the OIDs' content bytes instead of decoding them:
    /// this runs for every quote verified without a cache.
    private static func fields(of node: ASN1Node, under prefix: [UInt8] = oidContent) throws -> [UInt8: ASN1Node] {
        guard node.identifier == .sequence, case .constructed(let children) = node.content else {
            throw ASN1Error.unexpectedFieldType(node.identifier)
        }
        var result: [UInt8: ASN1Node] = [:]
        for child in children {
            guard case .constructed(let pair) = child.content else {
                throw ASN1Error.unexpectedFieldType(child.identifier)
            }
            var iterator = pair.makeIterator()
            guard let oidNode = iterator.next(), let value = iterator.next(), oidNode.identifier == .objectIdentifier,
                case .primitive(let content) = oidNode.content
            else {
                throw ASN1Error.invalidASN1Object(reason: "an SGX extension field lacks its OID or value")
            }
            if content.count == prefix.count + 1, content.starts(with: prefix), let arc = content.last, arc < 0x80 {
                result[arc] = value
            }
        }
        return result
    }
}
