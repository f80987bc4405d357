import Attestation
import Crypto
import Foundation
import _CryptoExtras

/// Signed SGX enclave images made for tests: a SIGSTRUCT signed with an RSA-3072 key of exponent
/// 3 (made by openssl, as SGX signers use), wrapped as each format keeps it.
public struct TestEnclaves: Sendable {
    public let uniqueID: [UInt8]
    public let productID: UInt16
    public let securityVersion: UInt16
    public let debug: Bool
    /// SHA-256 of the modulus, little-endian as stored.
    public let signerID: [UInt8]
    /// The 1,808-byte structure.
    public let sigstruct: [UInt8]

    /// A SIGSTRUCT for these values, signed with a new key.
    public static func make(
        uniqueID: [UInt8] = [UInt8](repeating: 0xC3, count: 32), productID: UInt16 = 7, securityVersion: UInt16 = 4,
        debug: Bool = false, in directory: URL
    ) async throws -> TestEnclaves {
        let keyFile = directory.appendingPathComponent("signer-\(UUID().uuidString).pem")
        let made = try await ProcessRunner.run(
            URL(fileURLWithPath: "/usr/bin/openssl"),
            [
                "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072", "-pkeyopt",
                "rsa_keygen_pubexp:3", "-out", keyFile.path,
            ])
        guard made.status == 0 else { throw LocalPCCS.Failure(description: "openssl genpkey: \(made.stderr)") }
        let key = try _RSA.Signing.PrivateKey(
            unsafePEMRepresentation: String(decoding: try Data(contentsOf: keyFile), as: UTF8.self))
        let printed = try await ProcessRunner.run(
            URL(fileURLWithPath: "/usr/bin/openssl"), ["rsa", "-in", keyFile.path, "-noout", "-modulus"])
        guard printed.status == 0, let line = printed.stdout.split(separator: "\n").first,
            line.hasPrefix("Modulus="), let modulusBigEndian = Hex.decode(String(line.dropFirst("Modulus=".count))),
            modulusBigEndian.count == 384
        else { throw LocalPCCS.Failure(description: "openssl rsa -modulus: \(printed.stdout)\(printed.stderr)") }
        var bytes = [UInt8](repeating: 0, count: 1808)
        func put(_ value: [UInt8], at offset: Int) {
            bytes.replaceSubrange(offset..<(offset + value.count), with: value)
        }
        func little(_ value: UInt64, _ size: Int) -> [UInt8] {
            (0..<size).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
        }
        put([6, 0, 0, 0, 0xE1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0], at: 0)
        put([1, 1, 0, 0, 0x60, 0, 0, 0, 0x60, 0, 0, 0, 1, 0, 0, 0], at: 24)
        put(little(0x2025_1201, 4), at: 20)  // date
        let modulus = Array(modulusBigEndian.reversed())
        put(modulus, at: 128)
        put(little(3, 4), at: 512)
        put([debug ? 0x06 : 0x04, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0], at: 928)  // ATTRIBUTES
        put([UInt8](repeating: 0xFF, count: 16), at: 944)  // ATTRIBUTEMASK
        put(uniqueID, at: 960)
        put(little(UInt64(productID), 2), at: 1024)
        put(little(UInt64(securityVersion), 2), at: 1026)
        let signed = Array(bytes[0..<128]) + Array(bytes[900..<1028])
        let signature = try key.signature(for: SHA256.hash(data: signed), padding: .insecurePKCS1v1_5)
        put(Array(Array(signature.rawRepresentation).reversed()), at: 516)
        return TestEnclaves(
            uniqueID: uniqueID, productID: productID, securityVersion: securityVersion, debug: debug,
            signerID: Array(SHA256.hash(data: modulus)), sigstruct: bytes)
    }

    /// A minimal 64-bit ELF file with one section `name` holding `prefix` and the SIGSTRUCT.
    public func elf(section name: String, prefix: [UInt8] = [UInt8](repeating: 0xAB, count: 89)) -> [UInt8] {
        Self.elf(section: name, content: prefix + sigstruct)
    }

    /// A minimal 64-bit ELF file with one section `name` holding `content`.
    public static func elf(section name: String, content: [UInt8]) -> [UInt8] {
        let names = [0] + Array(".shstrtab".utf8) + [0] + Array(name.utf8) + [0]
        let contentOffset = 64
        let namesOffset = contentOffset + content.count
        let tableOffset = namesOffset + names.count
        func little(_ value: Int, _ size: Int) -> [UInt8] {
            (0..<size).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
        }
        var header = [0x7F, 0x45, 0x4C, 0x46, 2, 1, 1, 0] + [UInt8](repeating: 0, count: 8)
        header += little(3, 2) + little(62, 2) + little(1, 4) + little(0, 8) + little(0, 8) + little(tableOffset, 8)
        header +=
            little(0, 4) + little(64, 2) + little(56, 2) + little(0, 2) + little(64, 2) + little(3, 2) + little(1, 2)
        func section(name: Int, type: Int, offset: Int, size: Int) -> [UInt8] {
            little(name, 4) + little(type, 4) + little(0, 8) + little(0, 8) + little(offset, 8) + little(size, 8)
                + little(0, 4) + little(0, 4) + little(1, 8) + little(0, 8)
        }
        let table =
            section(name: 0, type: 0, offset: 0, size: 0)
            + section(name: 1, type: 3, offset: namesOffset, size: names.count)
            + section(name: 11, type: 7, offset: contentOffset, size: content.count)
        return header + content + names + table
    }
}
