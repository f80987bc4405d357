import Crypto
import Foundation
import JSONText
import X509

/// The Coordinator's update log as JSON lines that anyone holding the Coordinator's root
/// certificate can verify offline.
///
/// Each line is a JSON object: the entry's members (`details`, `event`, `previous`, `sequence`,
/// `time`, `user`) and `signature`, the root key's ECDSA signature (ASN.1 DER, standard base64)
/// over SHA-256 of the line's canonical form without `signature`. The canonical form is compact
/// JSON with object keys sorted by their UTF-8 bytes and strings escaped as Go's `encoding/json`
/// does; lines are written in that form, so the signed bytes are the line with its `signature`
/// member removed. `previous` is the hex SHA-256 of the previous line's bytes, so removing,
/// reordering or changing any line breaks the chain at that position.
public enum AuditLog {
    /// `previous` of the first entry.
    public static let genesis = String(repeating: "0", count: 64)

    /// The signed line of `entry`. `sign` returns an ASN.1 DER ECDSA signature of the digest.
    public static func line(for entry: AuditEntry, sign: (SHA256Digest) throws -> [UInt8]) rethrows -> [UInt8] {
        let unsigned = JSONValue.object(entry.members).serialized()
        let signature = try sign(SHA256.hash(data: unsigned))
        return JSONValue.object(
            entry.members + [JSONMember("signature", .string(Data(signature).base64EncodedString()))]
        )
        .serialized()
    }

    /// The hex SHA-256 of a line: the next entry's `previous`.
    public static func hash(of line: [UInt8]) -> String {
        SHA256.hash(data: line).map { String(format: "%02x", $0) }.joined()
    }

    /// Verifies every line against the root certificate's key and the chain of hashes and
    /// sequence numbers; returns the entries. The error names the first line (1-based) that fails.
    public static func verify(_ lines: [[UInt8]], root: Certificate) throws(AuditLogError) -> [AuditEntry] {
        let verifier = try SignatureVerifier(root.publicKey)
        var entries: [AuditEntry] = []
        var previous = genesis
        for (index, line) in lines.enumerated() {
            let position = index + 1
            let (entry, signature) = try parse(line, position: position)
            let unsigned = JSONValue.object(entry.members).serialized()
            guard JSONValue.object(entry.members + [JSONMember("signature", .string(signature))]).serialized() == line
            else {
                throw AuditLogError(
                    position, "is not in canonical form (keys sorted, compact, no other members): it was altered")
            }
            // Canonical base64 only: spare bits in the last character must not let a line change.
            guard let signatureDER = Data(base64Encoded: signature), signatureDER.base64EncodedString() == signature,
                verifier.isValid(Array(signatureDER), for: SHA256.hash(data: unsigned))
            else {
                throw AuditLogError(position, "has a signature that does not verify with the Coordinator's root key")
            }
            guard entry.sequence == position else {
                throw AuditLogError(position, "has sequence number \(entry.sequence), expected \(position)")
            }
            guard entry.previous == previous else {
                throw AuditLogError(position, "does not follow the line before it (hash chain broken)")
            }
            previous = hash(of: line)
            entries.append(entry)
        }
        return entries
    }

    private static func parse(_ line: [UInt8], position: Int) throws(AuditLogError) -> (AuditEntry, String) {
        let value: JSONValue
        do {
            value = try JSONParser(maximumDepth: 4).parse(line)
        } catch {
            throw AuditLogError(position, "is not JSON (\(error.description))")
        }
        guard case .object(let members) = value else { throw AuditLogError(position, "is not a JSON object") }
        var fields: [String: JSONValue] = [:]
        for member in members {
            guard fields[member.key] == nil else {
                throw AuditLogError(position, "has the member \"\(member.key.prefix(40))\" twice")
            }
            fields[member.key] = member.value
        }
        func string(_ key: String) throws(AuditLogError) -> String {
            guard case .string(let text) = fields[key] else {
                throw AuditLogError(position, "has no string \"\(key)\"")
            }
            return text
        }
        guard case .number(let sequenceText) = fields["sequence"], let sequence = Int(sequenceText) else {
            throw AuditLogError(position, "has no integer \"sequence\"")
        }
        var user: String?
        switch fields["user"] {
        case .string(let name): user = name
        case .null: user = nil
        default: throw AuditLogError(position, "has no \"user\" (a string or null)")
        }
        guard case .object(let detailMembers) = fields["details"] else {
            throw AuditLogError(position, "has no object \"details\"")
        }
        var details: [String: String] = [:]
        for member in detailMembers {
            guard case .string(let text) = member.value, details[member.key] == nil else {
                throw AuditLogError(position, "has details that are not distinct strings")
            }
            details[member.key] = text
        }
        let entry = AuditEntry(
            sequence: sequence, time: try string("time"), event: try string("event"), user: user, details: details,
            previous: try string("previous"))
        return (entry, try string("signature"))
    }
}

/// Why an update log does not verify, and at which line. Errors are equal when they name the
/// same line, so tests assert where a log breaks, not the wording.
public struct AuditLogError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The 1-based line that failed; 0 when the log as a whole cannot be checked.
    public var line: Int
    public var message: String

    public init(_ line: Int, _ message: String) {
        self.line = line
        self.message = message
    }

    public var description: String { line == 0 ? message : "update log line \(line) \(message)" }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.line == rhs.line }
    public func hash(into hasher: inout Hasher) { hasher.combine(line) }
}

/// ECDSA verification with the root certificate's key (P-256 or P-384, as the Coordinator's CA).
struct SignatureVerifier {
    private let verify: ([UInt8], SHA256Digest) -> Bool

    init(_ key: Certificate.PublicKey) throws(AuditLogError) {
        if let p256 = P256.Signing.PublicKey(key) {
            verify = { der, digest in
                (try? P256.Signing.ECDSASignature(derRepresentation: der)).map {
                    p256.isValidSignature($0, for: digest)
                } ?? false
            }
        } else if let p384 = P384.Signing.PublicKey(key) {
            verify = { der, digest in
                (try? P384.Signing.ECDSASignature(derRepresentation: der)).map {
                    p384.isValidSignature($0, for: digest)
                } ?? false
            }
        } else {
            throw AuditLogError(0, "the root certificate's key is not ECDSA P-256 or P-384")
        }
    }

    func isValid(_ signature: [UInt8], for digest: SHA256Digest) -> Bool { verify(signature, digest) }
}
