import Crypto
import Foundation
import SwiftASN1
import X509

/// Issues CRLs (RFC 5280 v2, ECDSA P-256) for the simulated platform's CAs.
enum CRLBuilder {
    static func issue(
        issuer: Certificate, key: P256.Signing.PrivateKey, thisUpdate: Date, nextUpdate: Date,
        revoked: [Certificate.SerialNumber]
    ) throws -> CertificateRevocationList {
        var tbs = DER.Serializer()
        try tbs.appendConstructedNode(identifier: .sequence) { list in
            try list.serialize(1)
            try algorithm(&list)
            try list.serialize(issuer.subject)
            try list.serialize(utcTime(thisUpdate))
            try list.serialize(utcTime(nextUpdate))
            if !revoked.isEmpty {
                try list.appendConstructedNode(identifier: .sequence) { entries in
                    for serial in revoked {
                        try entries.appendConstructedNode(identifier: .sequence) { entry in
                            try entry.serialize(serial.bytes)
                            try entry.serialize(utcTime(thisUpdate))
                        }
                    }
                }
            }
            // crlExtensions [0]: the CRL number RFC 5280 requires (verifiers such as webpki insist on it).
            try list.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) {
                tagged in
                try tagged.appendConstructedNode(identifier: .sequence) { extensions in
                    try extensions.appendConstructedNode(identifier: .sequence) { crlNumber in
                        try crlNumber.serialize(crlNumberOID)
                        var number = DER.Serializer()
                        try number.serialize(1)
                        try crlNumber.serialize(ASN1OctetString(contentBytes: number.serializedBytes[...]))
                    }
                }
            }
        }
        let tbsBytes = tbs.serializedBytes
        let signature = try key.signature(for: SHA256.hash(data: tbsBytes)).derRepresentation
        var crl = DER.Serializer()
        try crl.appendConstructedNode(identifier: .sequence) { outer in
            outer.serializeRawBytes(tbsBytes)
            try algorithm(&outer)
            try outer.serialize(ASN1BitString(bytes: Array(signature)[...]))
        }
        return try CertificateRevocationList(derEncoded: crl.serializedBytes)
    }

    private static let crlNumberOID: ASN1ObjectIdentifier = [2, 5, 29, 20]

    private static func algorithm(_ serializer: inout DER.Serializer) throws {
        try serializer.appendConstructedNode(identifier: .sequence) {
            try $0.serialize(CertificateRevocationList.ecdsaWithSHA256)
        }
    }

    private static func utcTime(_ date: Date) throws -> UTCTime {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return try UTCTime(
            year: parts.year!, month: parts.month!, day: parts.day!, hours: parts.hour!, minutes: parts.minute!,
            seconds: parts.second!)
    }
}
