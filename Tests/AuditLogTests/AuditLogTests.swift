import AuditLog
import Crypto
import Foundation
import JSONText
import Testing
import X509

/// A root key and its self-signed certificate, as the Coordinator's CA has.
struct Root {
    let certificate: Certificate
    let sign: (SHA256Digest) throws -> [UInt8]

    static func p256() throws -> Root {
        let key = P256.Signing.PrivateKey()
        return Root(
            certificate: try selfSigned(Certificate.PrivateKey(key), .ecdsaWithSHA256),
            sign: { Array(try key.signature(for: $0).derRepresentation) })
    }

    static func p384() throws -> Root {
        let key = P384.Signing.PrivateKey()
        return Root(
            certificate: try selfSigned(Certificate.PrivateKey(key), .ecdsaWithSHA384),
            sign: { Array(try key.signature(for: $0).derRepresentation) })
    }

    private static func selfSigned(_ key: Certificate.PrivateKey, _ algorithm: Certificate.SignatureAlgorithm) throws
        -> Certificate
    {
        let name = try DistinguishedName { CommonName("MarbleRun Coordinator") }
        return try Certificate(
            version: .v3, serialNumber: .init(), publicKey: key.publicKey, notValidBefore: Date() - 60,
            notValidAfter: Date() + 3600, issuer: name, subject: name, signatureAlgorithm: algorithm,
            extensions: Certificate.Extensions {}, issuerPrivateKey: key)
    }

    /// A log of `count` entries.
    func log(_ count: Int) throws -> [[UInt8]] {
        var lines: [[UInt8]] = []
        var previous = AuditLog.genesis
        for sequence in 1...count {
            let entry = AuditEntry(
                sequence: sequence, time: "2026-11-30T16:0\(sequence % 10):00Z",
                event: sequence == 1 ? AuditEvent.manifestSet : AuditEvent.secretsWritten,
                user: sequence == 1 ? nil : "alice", details: ["secrets": "s\(sequence)", "note": "<&> \"q\" é"],
                previous: previous)
            let line = try AuditLog.line(for: entry, sign: sign)
            previous = AuditLog.hash(of: line)
            lines.append(line)
        }
        return lines
    }
}

@Suite struct AuditLogTests {
    @Test(arguments: ["P-256", "P-384"]) func aLogVerifiesWithTheRootThatSignedIt(curve: String) throws {
        let root = try curve == "P-256" ? Root.p256() : Root.p384()
        let entries = try AuditLog.verify(try root.log(5), root: root.certificate)
        #expect(entries.map(\.sequence) == [1, 2, 3, 4, 5])
        #expect(entries[0].user == nil && entries[1].user == "alice")
        #expect(entries[2].details["note"] == "<&> \"q\" é")
    }

    @Test func anEmptyLogVerifies() throws {
        #expect(try AuditLog.verify([], root: try Root.p256().certificate).isEmpty)
    }

    @Test func linesAreCanonicalJSONWithASignature() throws {
        let line = try Root.p256().log(1)[0]
        let value = try JSONParser().parse(line)
        guard case .object(let members) = value else { Issue.record("not an object"); return }
        #expect(members.map(\.key) == ["details", "event", "previous", "sequence", "signature", "time", "user"])
        #expect(!line.contains(UInt8(ascii: "\n")))
    }

    @Test func anotherRootDoesNotVerifyTheLog() throws {
        let lines = try Root.p256().log(3)
        #expect(throws: AuditLogError(1, "")) { try AuditLog.verify(lines, root: try Root.p256().certificate) }
        let error = try #require(throws: AuditLogError.self) {
            try AuditLog.verify(lines, root: try Root.p384().certificate)
        }
        #expect(error.description.contains("line 1"))
    }

    /// Every single-byte change of every line is caught at that line or an earlier one.
    @Test func everyFlippedByteIsDetectedAtItsLine() throws {
        let root = try Root.p256()
        let lines = try root.log(3)
        for (index, line) in lines.enumerated() {
            for offset in line.indices {
                var tampered = lines
                tampered[index][offset] ^= 0x01
                let error = try #require(throws: AuditLogError.self) {
                    try AuditLog.verify(tampered, root: root.certificate)
                }
                #expect(error.line == index + 1, "byte \(offset) of line \(index + 1): \(error)")
            }
        }
    }

    @Test func removedReorderedAndTruncatedLinesAreDetected() throws {
        let root = try Root.p256()
        let lines = try root.log(4)
        var removed = lines
        removed.remove(at: 1)
        #expect(throws: AuditLogError(2, "")) { try AuditLog.verify(removed, root: root.certificate) }
        var swapped = lines
        swapped.swapAt(1, 2)
        #expect(throws: AuditLogError(2, "")) { try AuditLog.verify(swapped, root: root.certificate) }
        #expect(throws: AuditLogError(1, "")) {
            try AuditLog.verify([Array(lines[0].dropLast(5))], root: root.certificate)
        }
        // Dropping the newest lines is not detectable from the lines alone: the Coordinator
        // returns the count with the log, and the CLI compares it with what it saw before.
        #expect(try AuditLog.verify(Array(lines.prefix(2)), root: root.certificate).count == 2)
    }

    @Test func aLineReSignedWithAnotherKeyOrReformattedIsRejected() throws {
        let root = try Root.p256()
        let lines = try root.log(2)
        // The same entry, signed by an attacker's key.
        let forged = try AuditLog.line(
            for: AuditEntry(
                sequence: 2, time: "2026-11-30T16:02:00Z", event: AuditEvent.secretsWritten, user: "mallory",
                details: [:], previous: AuditLog.hash(of: lines[0])),
            sign: try Root.p256().sign)
        #expect(throws: AuditLogError(2, "")) { try AuditLog.verify([lines[0], forged], root: root.certificate) }
        // Whitespace or an extra member change the signed form.
        let spaced = Array(String(decoding: lines[1], as: UTF8.self).replacingOccurrences(of: ",", with: ", ").utf8)
        #expect(throws: AuditLogError(2, "")) { try AuditLog.verify([lines[0], spaced], root: root.certificate) }
        var extra = lines[1]
        extra.removeLast()
        extra += Array(#","zzz":"1"}"#.utf8)
        #expect(throws: AuditLogError(2, "")) { try AuditLog.verify([lines[0], extra], root: root.certificate) }
    }

    @Test(arguments: ["", "[]", "{}", "null", #"{"sequence":1}"#, String(repeating: "[", count: 100)])
    func malformedLinesAreRejectedWithTheirPosition(text: String) throws {
        let root = try Root.p256()
        let lines = try root.log(1) + [Array(text.utf8)]
        let error = try #require(throws: AuditLogError.self) { try AuditLog.verify(lines, root: root.certificate) }
        #expect(error.line == 2)
    }
}
