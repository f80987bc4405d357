import Foundation
import SwiftASN1
import X509

/// What a quote carries to identify the PCK certificate: the PEM chain itself (type 5), or a
/// PPID form (types 1–4) for which the certificate must be supplied separately.
public struct CertificationData: Sendable, Hashable {
    public static let pemChainType: UInt16 = 5
    public static let qeReportType: UInt16 = 6

    public let type: UInt16
    public let data: [UInt8]

    init(type: UInt16, data: [UInt8]) throws(AttestationError) {
        guard (1...5).contains(type) else {
            throw AttestationError(.unsupportedQuote, "certification data type \(type) is not supported (1–5 are)")
        }
        self.type = type
        self.data = data
    }

    /// The PCK chain (leaf first) of a type 5 quote; nil for types 1–4.
    public func pemChain() throws(AttestationError) -> [Certificate]? {
        guard type == Self.pemChainType else { return nil }
        return try PEMChain.certificates(in: data)
    }
}

/// Reads concatenated PEM certificates as quotes carry them: lines of any length, CRLF, and
/// trailing NUL bytes are accepted.
public enum PEMChain {
    public static func certificates(in bytes: [UInt8]) throws(AttestationError) -> [Certificate] {
        var end = bytes.count
        while end > 0, bytes[end - 1] == 0 { end -= 1 }
        guard let text = String(validating: bytes[0..<end], as: UTF8.self) else {
            throw AttestationError(.malformedCertificate, "the PEM certificate chain is not text")
        }
        return try certificates(in: text)
    }

    public static func certificates(in text: String) throws(AttestationError) -> [Certificate] {
        let begin = "-----BEGIN CERTIFICATE-----"
        let endMarker = "-----END CERTIFICATE-----"
        var certificates: [Certificate] = []
        var rest = text[...]
        while let start = rest.range(of: begin) {
            guard let stop = rest[start.upperBound...].range(of: endMarker) else {
                throw AttestationError(.malformedCertificate, "a PEM certificate has no END line")
            }
            let base64 = rest[start.upperBound..<stop.lowerBound].filter { !$0.isWhitespace }
            guard let der = Data(base64Encoded: String(base64)) else {
                throw AttestationError(
                    .malformedCertificate, "certificate \(certificates.count + 1) of the chain is not valid base64")
            }
            do {
                try requireWholeByteSignature(Array(der))
                certificates.append(try Certificate(derEncoded: Array(der)))
            } catch {
                throw AttestationError(
                    .malformedCertificate, "certificate \(certificates.count + 1) of the chain does not parse: \(error)"
                )
            }
            rest = rest[stop.upperBound...]
        }
        guard !certificates.isEmpty else {
            throw AttestationError(.malformedCertificate, "no PEM certificate found")
        }
        return certificates
    }

    /// swift-certificates ignores the unused-bits count of the signature BIT STRING; DER allows only 0.
    private static func requireWholeByteSignature(_ der: [UInt8]) throws {
        try DER.sequence(DER.parse(der), identifier: .sequence) { nodes in
            _ = nodes.next()
            _ = nodes.next()
            let signature = try ASN1BitString(derEncoded: &nodes)
            guard signature.paddingBits == 0 else {
                throw ASN1Error.invalidASN1Object(reason: "the signature BIT STRING has unused bits")
            }
        }
    }
}
