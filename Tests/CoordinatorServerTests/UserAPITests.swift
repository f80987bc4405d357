import Attestation
import AuditLog
import Crypto
import Foundation
import ManifestTesting
import Testing
import X509

/// The user endpoints of the real binary, driven with curl and client certificates.
@Suite(.serialized)
struct UserAPITests {
    /// A started Coordinator with the users manifest set, and the users' PEM files.
    struct Cluster {
        let coordinator: CoordinatorProcess
        let identities: [String: (cert: String, key: String)]
        let root: Certificate

        static func start() async throws -> Cluster {
            let coordinator = try CoordinatorProcess()
            try await coordinator.start()
            let platform = try SimulatedPlatform.load(from: coordinator.simulationDirectory)
            let users = ["admin", "reader", "writer", "stranger"].map { try! TestUser(name: $0) }
            var identities: [String: (cert: String, key: String)] = [:]
            for user in users {
                identities[user.name] = (
                    try CoordinatorBinaryTests.write(
                        user.certificatePEM, "\(user.name).crt", in: coordinator.directory),
                    try CoordinatorBinaryTests.write(user.keyPEM, "\(user.name).key", in: coordinator.directory)
                )
            }
            let manifest = UserManifest.bytes(
                signerID: ActivationManifest.enclave(on: platform).signerID, admin: users[0], reader: users[1],
                writer: users[2])
            let set = try coordinator.request(
                "POST", "/api/v2/manifest", body: #"{"manifest":"\#(Data(manifest).base64EncodedString())"}"#)
            try #require(set.status == 200, "\(set.json)")
            let quote = try coordinator.request("GET", "/api/v2/quote")
            let chain = try CoordinatorBinaryTests.pemBlocks(
                try #require((quote.json["data"] as? [String: Any])?["cert"] as? String))
            return Cluster(
                coordinator: coordinator, identities: identities, root: try Certificate(derEncoded: chain[1]))
        }

        func request(_ method: String, _ path: String, as name: String?, body: String? = nil) throws -> (
            status: Int, json: [String: Any]
        ) {
            try coordinator.request(method, path, body: body, identity: name.flatMap { identities[$0] })
        }

        /// The update log's lines, checked against the root certificate.
        func verifiedLog() throws -> [AuditEntry] {
            let answer = try request("GET", "/api/v2/update", as: nil)
            let lines = try #require((answer.json["data"] as? [String: Any])?["updateLog"] as? [String])
            return try AuditLog.verify(lines.map { Array($0.utf8) }, root: root)
        }
    }

    static func setKey(_ bytes: [UInt8]) -> String {
        #"{"secrets":{"userKey":{"Key":"\#(Data(bytes).base64EncodedString())"}}}"#
    }

    /// Every user endpoint × (no certificate, a stranger's, each role): exactly the allowed calls
    /// succeed; the others get 401/403 JSend and change nothing.
    @Test func authorizationMatrix() async throws {
        let cluster = try await Cluster.start()
        let identities: [String?] = [nil, "stranger", "admin", "reader", "writer"]
        let key = Array(repeating: UInt8(0x11), count: 16)
        struct Row {
            var method: String
            var path: String
            var body: String?
            /// Expected status for none, stranger, admin, reader, writer.
            var statuses: [Int]
        }
        let rows = [
            Row(method: "GET", path: "/api/v2/secrets?s=sharedKey", statuses: [401, 401, 403, 200, 403]),
            Row(method: "GET", path: "/api/v2/secrets?s=userKey", statuses: [401, 401, 404, 404, 403]),
            Row(method: "GET", path: "/api/v2/secrets?s=ownKey", statuses: [401, 401, 403, 403, 403]),
            Row(method: "POST", path: "/api/v2/secrets", body: Self.setKey(key), statuses: [401, 401, 200, 403, 200]),
            Row(
                method: "POST", path: "/api/v2/secrets",
                body: #"{"secrets":{"userPlain":{"Key":"aGk="}}}"#, statuses: [401, 401, 200, 403, 403]),
            Row(method: "GET", path: "/api/v2/update", statuses: [200, 200, 200, 200, 200]),
            Row(method: "GET", path: "/secrets?s=sharedKey", statuses: [401, 401, 403, 200, 403]),
            Row(method: "GET", path: "/update", statuses: [200, 200, 200, 200, 200]),
        ]
        var writes = 0
        for row in rows {
            for (identity, expected) in zip(identities, row.statuses) {
                let before = try cluster.verifiedLog().count
                let answer = try cluster.request(row.method, row.path, as: identity, body: row.body)
                let who = identity ?? "no certificate"
                #expect(answer.status == expected, "\(row.method) \(row.path) as \(who): \(answer.json)")
                #expect(
                    answer.json["status"] as? String == (expected == 200 ? "success" : "fail"),
                    "\(row.method) \(row.path) as \(who)")
                if answer.status == 200, row.method == "POST" { writes += 1 }
                #expect(
                    try cluster.verifiedLog().count == before + (answer.status == 200 && row.method == "POST" ? 1 : 0),
                    "\(row.method) \(row.path) as \(who) changed the log")
            }
        }
        #expect(try cluster.verifiedLog().count == 1 + writes)
        #expect(await cluster.coordinator.stop() == 0)
    }

    @Test func secretsRoundTripThroughTheAPIAndTheLogVerifies() async throws {
        let cluster = try await Cluster.start()
        let key = (0..<16).map { UInt8($0) }
        #expect(try cluster.request("POST", "/api/v2/secrets", as: "writer", body: Self.setKey(key)).status == 200)
        let read = try cluster.request("GET", "/api/v2/secrets?s=userKey&s=sharedKey", as: "reader")
        let secrets = try #require((read.json["data"] as? [String: Any])?["secrets"] as? [String: [String: Any]])
        #expect(secrets["userKey"]?["Private"] as? String == Data(key).base64EncodedString())
        #expect(secrets["userKey"]?["Type"] as? String == "symmetric-key")
        #expect(secrets["userKey"]?["UserDefined"] as? Bool == true)
        #expect(secrets["sharedKey"]?["Shared"] as? Bool == true)
        #expect((secrets["sharedKey"]?["Private"] as? String).flatMap { Data(base64Encoded: $0) }?.count == 32)

        // A user-defined certificate: Cert as PEM, Private as base64 PKCS #8.
        let owner = try TestUser(name: "service")
        let pem = owner.certificatePEM.replacingOccurrences(of: "\n", with: "\\n")
        let body =
            #"{"secrets":{"userCert":{"Cert":"\#(pem)","Private":"\#(owner.key.derRepresentation.base64EncodedString())"}}}"#
        #expect(try cluster.request("POST", "/api/v2/secrets", as: "admin", body: body).status == 200)
        let cert = try cluster.request("GET", "/api/v2/secrets?s=userCert", as: "admin")
        let certSecret = try #require(
            ((cert.json["data"] as? [String: Any])?["secrets"] as? [String: [String: Any]])?["userCert"])
        #expect(certSecret["Cert"] as? String == Data(owner.certificateDER).base64EncodedString())
        #expect(certSecret["Private"] as? String == owner.key.derRepresentation.base64EncodedString())

        let entries = try cluster.verifiedLog()
        #expect(entries.map(\.event) == [AuditEvent.manifestSet, AuditEvent.secretsWritten, AuditEvent.secretsWritten])
        #expect(entries.map(\.user) == [nil, "writer", "admin"])
        #expect(await cluster.coordinator.stop() == 0)
    }

    @Test func badSecretRequestsGetAJSendFailAndChangeNothing() async throws {
        let cluster = try await Cluster.start()
        let names = (0..<300).map { "s=n\($0)" }.joined(separator: "&")
        let cases: [(method: String, path: String, body: String?, status: Int)] = [
            ("POST", "/api/v2/secrets", "{not json", 400),
            ("POST", "/api/v2/secrets", "[]", 400),
            ("POST", "/api/v2/secrets", #"{"secrets":{"userKey":{"Key":"%%%"}}}"#, 400),
            ("POST", "/api/v2/secrets", #"{"secrets":{"userKey":{"Key":5}}}"#, 400),
            ("POST", "/api/v2/secrets", #"{"secrets":{"userKey":{"Colour":"AA=="}}}"#, 400),
            ("POST", "/api/v2/secrets", #"{"secrets":{"userKey":"AA=="}}"#, 400),
            ("POST", "/api/v2/secrets", #"{"secrets":{},"extra":1}"#, 400),
            ("POST", "/api/v2/secrets", #"{"secrets":{}}"#, 400),
            ("POST", "/api/v2/secrets", #"{"secrets":{"userKey":{"Key":"AA=="}}}"#, 400),
            (
                "POST", "/api/v2/secrets",
                #"{"secrets":{"userCert":{"Cert":"-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"}}}"#,
                400
            ),
            ("GET", "/api/v2/secrets", nil, 400),
            ("GET", "/api/v2/secrets?\(names)", nil, 400),
            ("DELETE", "/api/v2/secrets", nil, 405),
            ("POST", "/api/v2/update", "{}", 405),
        ]
        for item in cases {
            let answer = try cluster.request(item.method, item.path, as: "admin", body: item.body)
            #expect(answer.status == item.status, "\(item.method) \(item.path) \(item.body ?? ""): \(answer.json)")
            #expect(answer.json["status"] as? String == "fail")
        }
        #expect(try cluster.verifiedLog().count == 1)
        #expect(await cluster.coordinator.stop() == 0)
    }
}
