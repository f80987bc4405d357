import Crypto
import Testing

@testable import MarblerunCLI

/// The DigestInfo the CLI has a token pad and sign when it cannot hash (`CKM_RSA_PKCS`).
@Suite struct SHA256DigestInfoTests {
    /// RFC 8017, section 9.2, note 1: the DER of DigestInfo for SHA-256 is this prefix and the hash.
    static let rfc8017Prefix: [UInt8] = [
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04,
        0x20,
    ]

    @Test func isTheRFCsEncodingOfTheHash() throws {
        let digest = Array(SHA256.hash(data: Array("a recovery share".utf8)))
        #expect(try SHA256DigestInfo(digest: digest).derBytes() == Self.rfc8017Prefix + digest)
    }
}
