import SwiftASN1
import X509

extension PCKExtension {
    /// The extension as Intel encodes it, for certificates of the simulated platform.
    public func certificateExtension() throws -> Certificate.Extension {
        func arc(_ arcs: UInt...) throws -> ASN1ObjectIdentifier {
            try ASN1ObjectIdentifier(elements: Self.oid.oidComponents + arcs)
        }
        var serializer = DER.Serializer()
        try serializer.appendConstructedNode(identifier: .sequence) { outer in
            func field(_ oid: ASN1ObjectIdentifier, _ write: (inout DER.Serializer) throws -> Void) throws {
                try outer.appendConstructedNode(identifier: .sequence) { pair in
                    try pair.serialize(oid)
                    try write(&pair)
                }
            }
            try field(try arc(1)) { try $0.serialize(ASN1OctetString(contentBytes: ppid[...])) }
            try field(try arc(2)) { tcb in
                try tcb.appendConstructedNode(identifier: .sequence) { components in
                    for (index, svn) in tcbComponents.enumerated() {
                        try components.appendConstructedNode(identifier: .sequence) { pair in
                            try pair.serialize(
                                ASN1ObjectIdentifier(elements: Self.oid.oidComponents + [2, UInt(index + 1)]))
                            try pair.serialize(Int(svn))
                        }
                    }
                    try components.appendConstructedNode(identifier: .sequence) { pair in
                        try pair.serialize(ASN1ObjectIdentifier(elements: Self.oid.oidComponents + [2, 17]))
                        try pair.serialize(Int(pceSVN))
                    }
                    try components.appendConstructedNode(identifier: .sequence) { pair in
                        try pair.serialize(ASN1ObjectIdentifier(elements: Self.oid.oidComponents + [2, 18]))
                        try pair.serialize(ASN1OctetString(contentBytes: cpuSVN[...]))
                    }
                }
            }
            try field(try arc(3)) { try $0.serialize(ASN1OctetString(contentBytes: pceID[...])) }
            try field(try arc(4)) { try $0.serialize(ASN1OctetString(contentBytes: fmspc[...])) }
            try field(try arc(5)) { $0.appendPrimitiveNode(identifier: .enumerated) { $0.append(UInt8(sgxType)) } }
        }
        return Certificate.Extension(oid: Self.oid, critical: false, value: serializer.serializedBytes[...])
    }
}
