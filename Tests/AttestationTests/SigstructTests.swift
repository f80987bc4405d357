import CoordinatorTesting
import Foundation
import Testing

@testable import Attestation

/// SIGSTRUCTs of signed enclaves: the real one of an Occlum enclave (test data), and our own in
/// every format `package-info` reads; a changed byte in a signed region fails the signature.
@Suite struct SigstructTests {
    static let occlum = "sigstruct/occlum-libos-sgxmeta.bin"

    @Test func theRealOcclumEnclaveGivesItsPublishedValues() throws {
        let (sigstruct, _) = try EnclaveImage.sigstruct(at: TestData.url(Self.occlum).path)
        #expect(Hex.encode(sigstruct.uniqueID) == "9d0dc627f893fc5471c8089d621a3da3652cf4e67eece9143ec5656406275a26")
        #expect(Hex.encode(sigstruct.signerID) == "83d719e77deaca1470f6baf62a4d774303c899db69020f9c70ee1dfc08c7ce9e")
        #expect(sigstruct.productID == 0)
        #expect(sigstruct.securityVersion == 0)
        #expect(!sigstruct.debug)
        #expect(Hex.encode(sigstruct.attributes) == "04000000000000000300000000000000")
        #expect(sigstruct.exponent == 3)
        #expect(sigstruct.signatureIsValid)
    }

    @Test func aChangedByteInASignedRegionFailsTheSignatureAndOnlyThere() throws {
        let bytes = try TestData.bytes(Self.occlum)
        let start = 89
        let original = try Sigstruct(Array(bytes[start..<(start + Sigstruct.size)]))
        // Signed: the header region after the fixed headers, MRENCLAVE, ISVPRODID, ISVSVN.
        for offset in [20, 100, 960, 1000, 1024, 1027] {
            var changed = original.bytes
            changed[offset] ^= 0x01
            #expect(!(try Sigstruct(changed)).signatureIsValid, "byte \(offset)")
        }
        // The modulus, the signature and the exponent: a different key or signature fails too.
        for offset in [128, 600, 512] {
            var changed = original.bytes
            changed[offset] ^= 0x01
            #expect(!(try Sigstruct(changed)).signatureIsValid, "byte \(offset)")
        }
        // Q1 and Q2 (1040 on) are helper values outside what is signed.
        var unsigned = original.bytes
        unsigned[1500] ^= 0x01
        #expect(try Sigstruct(unsigned).signatureIsValid)
    }

    @Test func everyFormatOfOurOwnSignedEnclaveIsRead() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sig-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let enclave = try await TestEnclaves.make(debug: true, in: directory)
        func write(_ bytes: [UInt8], _ name: String) throws -> String {
            let url = directory.appendingPathComponent(name)
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(bytes).write(to: url)
            return url.path
        }
        let gramineInstance = directory.appendingPathComponent("gramine")
        let occlumInstance = directory.appendingPathComponent("occlum")
        let paths = [
            try write(enclave.sigstruct, "app.sig"),
            try write(enclave.sigstruct, "gramine/app.sig"),
            try write(enclave.elf(section: ".note.sgxmeta"), "enclave.signed.so"),
            try write(enclave.elf(section: ".oeinfo", prefix: [UInt8](repeating: 0, count: 120)), "ego-app"),
            try write(enclave.elf(section: ".note.sgxmeta"), "occlum/build/lib/libocclum-libos.signed.so"),
        ]
        for path in paths + [gramineInstance.path, occlumInstance.path] {
            let (sigstruct, _) = try EnclaveImage.sigstruct(at: path)
            #expect(sigstruct.uniqueID == enclave.uniqueID, "\(path)")
            #expect(sigstruct.signerID == enclave.signerID, "\(path)")
            #expect(sigstruct.productID == 7 && sigstruct.securityVersion == 4 && sigstruct.debug, "\(path)")
            #expect(sigstruct.signatureIsValid, "\(path)")
        }
    }

    @Test func hostileFilesGetTypedErrors() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sig-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let enclave = try await TestEnclaves.make(in: directory)
        let elf = enclave.elf(section: ".note.sgxmeta")
        var cases: [(String, [UInt8], String)] = [
            ("empty", [], "no SIGSTRUCT"),
            ("truncated-sig", Array(enclave.sigstruct.prefix(1000)), "no SIGSTRUCT"),
            ("elf-header-only", Array(elf.prefix(64)), "malformed ELF"),
            ("elf-truncated", Array(elf.prefix(elf.count - 10)), "malformed ELF"),
            ("elf-32-bit", [0x7F, 0x45, 0x4C, 0x46, 1, 1] + Array(elf.dropFirst(6)), "64-bit"),
            ("elf-other-section", TestEnclaves.renamed(elf, from: ".note.sgxmeta", to: ".note.nothing"), "without"),
            ("elf-unsigned", TestEnclaves.zeroed(elf, enclave.sigstruct), "no SIGSTRUCT in it"),
        ]
        // A section table claiming 65,535 entries of 64 bytes.
        var huge = elf
        huge[0x3C] = 0xFF
        huge[0x3D] = 0xFF
        cases.append(("elf-huge-table", huge, "malformed ELF"))
        for (name, bytes, reason) in cases {
            let url = directory.appendingPathComponent(name)
            try Data(bytes).write(to: url)
            #expect {
                _ = try EnclaveImage.sigstruct(at: url.path)
            } throws: { error in
                (error as? AttestationError)?.message.contains(reason) == true
            }
        }
        #expect(throws: AttestationError.self) { _ = try EnclaveImage.sigstruct(at: directory.path) }
    }
}

extension TestEnclaves {
    /// `bytes` with the section name `from` replaced by `to` (same length) in the name table.
    static func renamed(_ bytes: [UInt8], from: String, to: String) -> [UInt8] {
        let old = Array(from.utf8)
        var out = bytes
        for start in stride(from: bytes.count - old.count, through: 0, by: -1)
        where Array(bytes[start..<(start + old.count)]) == old {
            out.replaceSubrange(start..<(start + old.count), with: Array(to.utf8))
            break
        }
        return out
    }

    /// `bytes` with the SIGSTRUCT's place zeroed (an enclave built but not signed).
    static func zeroed(_ bytes: [UInt8], _ sigstruct: [UInt8]) -> [UInt8] {
        var out = bytes
        for start in 0...(bytes.count - sigstruct.count)
        where Array(bytes[start..<(start + 16)]) == Array(sigstruct.prefix(16)) {
            out.replaceSubrange(start..<(start + sigstruct.count), with: [UInt8](repeating: 0, count: sigstruct.count))
            break
        }
        return out
    }
}
