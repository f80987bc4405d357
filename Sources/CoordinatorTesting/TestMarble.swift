import Attestation
import Crypto
import Foundation
import SwiftASN1
import X509

/// A marble as the premain is: a TLS key and self-signed certificate, a CSR, and a quote
/// from the simulated platform binding that certificate.
public struct TestMarble: Sendable {
    public let key = P256.Signing.PrivateKey()
    /// DER of the self-signed TLS certificate.
    public let certificate: [UInt8]
    /// DER of the CSR (asking for DNS name `localhost`, or the names given).
    public let csr: [UInt8]

    public init(alternativeNames: [GeneralName] = [.dnsName("localhost")]) throws {
        let name = try DistinguishedName { CommonName("marble") }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: Date().addingTimeInterval(-60),
            notValidAfter: Date().addingTimeInterval(3600), issuer: name, subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: Certificate.Extensions {}, issuerPrivateKey: .init(key))
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        self.certificate = serializer.serializedBytes
        let csr = try CertificateSigningRequest(
            version: .v1, subject: name, privateKey: .init(key),
            attributes: try CertificateSigningRequest.Attributes([
                .init(
                    ExtensionRequest(
                        extensions: Certificate.Extensions { SubjectAlternativeNames(alternativeNames) }))
            ]),
            signatureAlgorithm: .ecdsaWithSHA256)
        var csrSerializer = DER.Serializer()
        try csrSerializer.serialize(csr)
        self.csr = csrSerializer.serializedBytes
    }

    /// A quote for `enclave` whose report data is SHA-256 of this marble's certificate (or of
    /// `other`, to forge a replay).
    public func quote(_ platform: SimulatedPlatform, enclave: SimulatedEnclave, boundTo other: [UInt8]? = nil) throws
        -> [UInt8]
    {
        try platform.quote(reportData: Array(SHA256.hash(data: other ?? certificate)), enclave: enclave)
    }
}
