import Crypto
import Foundation
import _CryptoExtras

/// An SGX enclave signature structure (Intel SDM Vol. 3D, "Enclave Signature Structure"): what
/// an enclave's signer signs, and what the CPU checks before it runs the enclave. Integers are
/// little-endian; the signature is RSA-3072 (exponent 3), PKCS #1 v1.5 with SHA-256 over bytes
/// 0–127 and 900–1027.
public struct Sigstruct: Sendable, Hashable {
    public static let size = 1808
    /// The first header (bytes 0–15) and the second (24–39), fixed by the SDM.
    static let header1: [UInt8] = [6, 0, 0, 0, 0xE1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]
    static let header2: [UInt8] = [1, 1, 0, 0, 0x60, 0, 0, 0, 0x60, 0, 0, 0, 1, 0, 0, 0]

    public let bytes: [UInt8]

    /// The structure in `bytes` (exactly 1,808 of them, both headers in place).
    public init(_ bytes: [UInt8]) throws(AttestationError) {
        guard bytes.count == Self.size else {
            throw AttestationError(.truncated, "a SIGSTRUCT has \(Self.size) bytes, not \(bytes.count)")
        }
        guard Array(bytes[0..<16]) == Self.header1, Array(bytes[24..<40]) == Self.header2 else {
            throw AttestationError(.malformedQuote, "not a SIGSTRUCT: its headers are not the ones the SDM fixes")
        }
        self.bytes = bytes
    }

    func field(_ range: Range<Int>) -> [UInt8] { Array(bytes[range]) }

    func little(_ range: Range<Int>) -> UInt64 { bytes[range].reversed().reduce(0) { $0 << 8 | UInt64($1) } }

    /// The RSA modulus, little-endian as stored.
    public var modulus: [UInt8] { field(128..<512) }
    public var exponent: UInt32 { UInt32(little(512..<516)) }
    /// MRENCLAVE: the enclave's measurement (a package's UniqueID).
    public var uniqueID: [UInt8] { field(960..<992) }
    /// MRSIGNER: SHA-256 of the modulus as stored (a package's SignerID).
    public var signerID: [UInt8] { Array(SHA256.hash(data: modulus)) }
    public var productID: UInt16 { UInt16(little(1024..<1026)) }
    public var securityVersion: UInt16 { UInt16(little(1026..<1028)) }
    /// The ATTRIBUTES the enclave is signed for (16 bytes: flags, then XFRM).
    public var attributes: [UInt8] { field(928..<944) }
    /// The DEBUG attribute (flags bit 1): the host can read a debug enclave's memory.
    public var debug: Bool { bytes[928] & 0x02 != 0 }

    /// Whether the signature verifies under the structure's own key (RSA-3072, exponent 3, as
    /// the CPU requires), over the two signed regions.
    public var signatureIsValid: Bool {
        guard exponent == 3 else { return false }
        let signed = field(0..<128) + field(900..<1028)
        guard let key = try? _RSA.Signing.PublicKey(n: modulus.reversed(), e: [UInt8(3)]), key.keySizeInBits == 3072
        else { return false }
        let signature = _RSA.Signing.RSASignature(rawRepresentation: Array(field(516..<900).reversed()))
        return key.isValidSignature(signature, for: SHA256.hash(data: signed), padding: .insecurePKCS1v1_5)
    }

    /// The first SIGSTRUCT in `bytes` (a `.sig` file, an ELF section, a whole enclave file), found
    /// by its headers; nil if there is none.
    public static func find(in bytes: [UInt8]) -> Sigstruct? {
        guard bytes.count >= size else { return nil }
        var start = 0
        while start + size <= bytes.count {
            guard let offset = firstHeader(in: bytes, from: start) else { return nil }
            if offset + size <= bytes.count, let found = try? Sigstruct(Array(bytes[offset..<(offset + size)])) {
                return found
            }
            start = offset + 1
        }
        return nil
    }

    private static func firstHeader(in bytes: [UInt8], from start: Int) -> Int? {
        var index = start
        let last = bytes.count - header1.count
        while index <= last {
            if bytes[index] == header1[0], bytes[index + 4] == header1[4],
                bytes[index..<(index + header1.count)].elementsEqual(header1)
            {
                return index
            }
            index += 1
        }
        return nil
    }
}
