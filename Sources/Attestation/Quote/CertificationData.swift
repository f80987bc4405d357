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
        return try certificates(in: bytes[0..<end])
    }

    public static func certificates(in text: String) throws(AttestationError) -> [Certificate] {
        try certificates(in: Array(text.utf8)[...])
    }

    private static let intelRootDER: [UInt8] = (try? TrustAnchors.intelSGXRootCA.serializeAsPEM().derBytes) ?? []
    private static let begin = Array("-----BEGIN CERTIFICATE-----".utf8)
    private static let end = Array("-----END CERTIFICATE-----".utf8)

    /// Scans bytes (not Characters: a chain is ASCII, and this runs for every quote).
    static func certificates(in bytes: ArraySlice<UInt8>) throws(AttestationError) -> [Certificate] {
        var certificates: [Certificate] = []
        var rest = bytes
        while let start = firstIndex(of: begin, in: rest) {
            let bodyStart = start + begin.count
            guard let stop = firstIndex(of: end, in: rest[bodyStart...]) else {
                throw AttestationError(.malformedCertificate, "a PEM certificate has no END line")
            }
            let base64 = rest[bodyStart..<stop].filter { !(0x09...0x0D).contains($0) && $0 != 0x20 }
            guard let der = Data(base64Encoded: Data(base64)) else {
                throw AttestationError(
                    .malformedCertificate, "certificate \(certificates.count + 1) of the chain is not valid base64")
            }
            do {
                let bytes = Array(der)
                // Intel's root ends nearly every chain: reuse the parsed anchor when the bytes are its own.
                if bytes == intelRootDER {
                    certificates.append(TrustAnchors.intelSGXRootCA)
                } else {
                    certificates.append(try parseCertificate(bytes))
                }
            } catch {
                throw AttestationError(
                    .malformedCertificate, "certificate \(certificates.count + 1) of the chain does not parse: \(error)"
                )
            }
            rest = rest[(stop + end.count)...]
        }
        guard !certificates.isEmpty else {
            throw AttestationError(.malformedCertificate, "no PEM certificate found")
        }
        return certificates
    }

    private static func firstIndex(of needle: [UInt8], in haystack: ArraySlice<UInt8>) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        var index = haystack.startIndex
        let last = haystack.endIndex - needle.count
        while index <= last {
            if haystack[index] == needle[0] && haystack[index..<index + needle.count].elementsEqual(needle) {
                return index
            }
            index += 1
        }
        return nil
    }

    /// Parses DER once; swift-certificates ignores the unused-bits count of the signature
    /// BIT STRING, which DER requires to be 0, so that is checked on the same nodes.
    private static func parseCertificate(_ der: [UInt8]) throws -> Certificate {
        let root = try DER.parse(der)
        try DER.sequence(root, identifier: .sequence) { nodes in
            _ = nodes.next()
            _ = nodes.next()
            let signature = try ASN1BitString(derEncoded: &nodes)
            guard signature.paddingBits == 0 else {
                throw ASN1Error.invalidASN1Object(reason: "the signature BIT STRING has unused bits")
            }
        }
        return try Certificate(derEncoded: root)
    }
}
