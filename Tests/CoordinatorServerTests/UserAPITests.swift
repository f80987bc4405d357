import Attestation
import AuditLog
import CoordinatorTesting
import Crypto
import Foundation
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
            let users = try ["admin", "reader", "writer", "stranger", "updater1", "updater2"].map {
                try TestUser(name: $0)
            }
            var identities: [String: (cert: String, key: String)] = [:]
            for user in users {
                identities[user.name] = (
                    try CoordinatorBinaryTests.write(
                        user.certificatePEM, "\(user.name).crt", in: coordinator.directory),
                    try CoordinatorBinaryTests.write(user.keyPEM, "\(user.name).key", in: coordinator.directory)
                )
            }
            let manifest = manifest(platform: platform, users: users)
            let set = try await coordinator.request(
                "POST", "/api/v2/manifest", body: #"{"manifest":"\#(Data(manifest).base64EncodedString())"}"#)
            try #require(set.status == 200, "\(set.json)")
            let quote = try await coordinator.request("GET", "/api/v2/quote")
            let chain = try CoordinatorBinaryTests.pemBlocks(
                try #require((quote.json["data"] as? [String: Any])?["cert"] as? String))
            return Cluster(
                coordinator: coordinator, identities: identities, root: try Certificate(derEncoded: chain[1]),
                platform: platform, users: users)
        }

        let platform: SimulatedPlatform
        let users: [TestUser]

        /// The users manifest with two more updaters; all three must acknowledge a full update.
        static func manifest(platform: SimulatedPlatform, users: [TestUser], greeting: String = "hello") -> [UInt8] {
            UserManifest.bytes(
                signerID: ActivationManifest.enclave(on: platform).signerID, admin: users[0], reader: users[1],
                writer: users[2], updaters: Array(users[4...5]), updateThreshold: 3, greeting: greeting)
        }

        /// A manifest wrapped as the v2 API takes it.
        func body(greeting: String) -> String {
            let bytes = Self.manifest(platform: platform, users: users, greeting: greeting)
            return #"{"manifest":"\#(Data(bytes).base64EncodedString())"}"#
        }

        func request(_ method: String, _ path: String, as name: String?, body: String? = nil) async throws -> (
            status: Int, json: [String: Any]
        ) {
            try await coordinator.request(method, path, body: body, identity: name.flatMap { identities[$0] })
        }

        /// The update log's lines, checked against the root certificate.
        func verifiedLog() async throws -> [AuditEntry] {
            let answer = try await request("GET", "/api/v2/update", as: nil)
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
        let identities: [String?] = [nil, "stranger", "admin", "reader", "writer", "updater1"]
        let key = Array(repeating: UInt8(0x11), count: 16)
        struct Row {
            var method: String
            var path: String
            var body: String?
            /// Expected status for none, stranger, admin, reader, writer, updater1, in this order.
            var statuses: [Int]
        }
        let packageUpdate =
            #"{"manifest":"\#(Data(#"{"Packages":{"backend":{"SecurityVersion":3}}}"#.utf8).base64EncodedString())"}"#
        let rows = [
            Row(method: "GET", path: "/api/v2/secrets?s=sharedKey", statuses: [401, 401, 403, 200, 403, 403]),
            Row(method: "GET", path: "/api/v2/secrets?s=userKey", statuses: [401, 401, 404, 404, 403, 403]),
            Row(method: "GET", path: "/api/v2/secrets?s=ownKey", statuses: [401, 401, 403, 403, 403, 403]),
            Row(
                method: "POST", path: "/api/v2/secrets", body: Self.setKey(key),
                statuses: [401, 401, 200, 403, 200, 403]),
            Row(
                method: "POST", path: "/api/v2/secrets",
                body: #"{"secrets":{"userPlain":{"Key":"aGk="}}}"#, statuses: [401, 401, 200, 403, 403, 403]),
            Row(method: "GET", path: "/api/v2/update", statuses: [200, 200, 200, 200, 200, 200]),
            Row(method: "GET", path: "/secrets?s=sharedKey", statuses: [401, 401, 403, 200, 403, 403]),
            Row(method: "GET", path: "/update", statuses: [200, 200, 200, 200, 200, 200]),
            Row(method: "POST", path: "/api/v2/update", body: packageUpdate, statuses: [401, 401, 200, 403, 403, 403]),
            Row(method: "GET", path: "/api/v2/update-manifest", statuses: [404, 404, 404, 404, 404, 404]),
            // admin proposes (pending: 2 more acknowledgements); the next proposal conflicts.
            Row(
                method: "POST", path: "/api/v2/update", body: cluster.body(greeting: "v2"),
                statuses: [401, 401, 200, 403, 403, 409]),
            Row(method: "GET", path: "/api/v2/update-manifest", statuses: [200, 200, 200, 200, 200, 200]),
            Row(
                method: "POST", path: "/api/v2/update-manifest", body: cluster.body(greeting: "v2"),
                statuses: [401, 401, 409, 403, 403, 200]),
            Row(
                method: "POST", path: "/api/v2/update-manifest", body: cluster.body(greeting: "not v2"),
                statuses: [401, 401, 400, 403, 403, 400]),
            Row(method: "POST", path: "/api/v2/update-cancel", statuses: [401, 401, 200, 403, 403, 404]),
            Row(method: "GET", path: "/update-manifest", statuses: [404, 404, 404, 404, 404, 404]),
            // Feature gates this manifest leaves off.
            Row(
                method: "POST", path: "/api/v2/sign-quote", body: #"{"sgxQuote":"AA=="}"#,
                statuses: [403, 403, 403, 403, 403, 403]),
            Row(
                method: "POST", path: "/api/v2/monotonic-counter", body: #"{"name":"n","value":1}"#,
                statuses: [403, 403, 403, 403, 403, 403]),
            // Recovering is for recovery mode only: 409 in any other state.
            Row(method: "POST", path: "/api/v2/recover", body: "{}", statuses: [409, 409, 409, 409, 409, 409]),
        ]
        var writes = 0
        for row in rows {
            for (identity, expected) in zip(identities, row.statuses) {
                let before = try await cluster.verifiedLog().count
                let answer = try await cluster.request(row.method, row.path, as: identity, body: row.body)
                let who = identity ?? "no certificate"
                #expect(answer.status == expected, "\(row.method) \(row.path) as \(who): \(answer.json)")
                #expect(
                    answer.json["status"] as? String == (expected == 200 ? "success" : "fail"),
                    "\(row.method) \(row.path) as \(who)")
                if answer.status == 200, row.method == "POST" { writes += 1 }
                #expect(
                    try await cluster.verifiedLog().count == before
                        + (answer.status == 200 && row.method == "POST" ? 1 : 0),
                    "\(row.method) \(row.path) as \(who) changed the log")
            }
        }
        #expect(try await cluster.verifiedLog().count == 1 + writes)
        #expect(await cluster.coordinator.stop() == 0)
    }

    @Test func secretsRoundTripThroughTheAPIAndTheLogVerifies() async throws {
        let cluster = try await Cluster.start()
        let key = (0..<16).map { UInt8($0) }
        #expect(
            try await cluster.request("POST", "/api/v2/secrets", as: "writer", body: Self.setKey(key)).status == 200)
        let read = try await cluster.request("GET", "/api/v2/secrets?s=userKey&s=sharedKey", as: "reader")
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
        #expect(try await cluster.request("POST", "/api/v2/secrets", as: "admin", body: body).status == 200)
        let cert = try await cluster.request("GET", "/api/v2/secrets?s=userCert", as: "admin")
        let certSecret = try #require(
            ((cert.json["data"] as? [String: Any])?["secrets"] as? [String: [String: Any]])?["userCert"])
        #expect(certSecret["Cert"] as? String == Data(owner.certificateDER).base64EncodedString())
        #expect(certSecret["Private"] as? String == owner.key.derRepresentation.base64EncodedString())

        let entries = try await cluster.verifiedLog()
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
            ("POST", "/api/v2/update", "{}", 400),
            ("PUT", "/api/v2/update", "{}", 405),
        ]
        for item in cases {
            let answer = try await cluster.request(item.method, item.path, as: "admin", body: item.body)
            #expect(answer.status == item.status, "\(item.method) \(item.path) \(item.body ?? ""): \(answer.json)")
            #expect(answer.json["status"] as? String == "fail")
        }
        #expect(try await cluster.verifiedLog().count == 1)
        #expect(await cluster.coordinator.stop() == 0)
    }
}

/// The feature-gated endpoints of the real binary with the gates on: sign-quote checked with
/// the root key, and a monotonic counter set by a marble with its Coordinator-issued certificate.
@Suite struct FeatureGateAPITests {
    @Test func signQuoteAndMonotonicCounterWorkWhenEnabled() async throws {
        let coordinator = try CoordinatorProcess()
        try await coordinator.start(extraArguments: ["--dns-names", "localhost,127.0.0.1"])
        let platform = try SimulatedPlatform.load(from: coordinator.simulationDirectory)
        let users = try ["admin", "reader", "writer"].map { try TestUser(name: $0) }
        let enclave = ActivationManifest.enclave(on: platform)
        let manifest = UserManifest.bytes(
            signerID: enclave.signerID, admin: users[0], reader: users[1], writer: users[2],
            featureGates: ["SignQuoteEndpoint", "MonotonicCounter"])
        let set = try await coordinator.request(
            "POST", "/api/v2/manifest", body: #"{"manifest":"\#(Data(manifest).base64EncodedString())"}"#)
        try #require(set.status == 200, "\(set.json)")
        let root = try await RecoveryAPITests.root(coordinator)

        let quote = try TestMarble().quote(platform, enclave: enclave)
        let quoteText = Data(quote).base64EncodedString()
        let signed = try await coordinator.request("POST", "/api/v2/sign-quote", body: #"{"sgxQuote":"\#(quoteText)"}"#)
        let data = try #require(signed.json["data"] as? [String: Any], "\(signed.json)")
        #expect(data["tcbStatus"] as? String == "UpToDate")
        let signature = try #require(Data(base64Encoded: data["verificationSignature"] as? String ?? ""))
        let key = try #require(P256.Signing.PublicKey(root.publicKey))
        #expect(
            key.isValidSignature(
                try P256.Signing.ECDSASignature(derRepresentation: signature),
                for: SHA256.hash(data: Array((quoteText + "UpToDate").utf8))))
        let bad = try await coordinator.request("POST", "/api/v2/sign-quote", body: #"{"sgxQuote":"AAAA"}"#)
        #expect(bad.status == 400 && bad.json["status"] as? String == "fail")

        // A marble: user-defined secrets first, then an activation for its certificate and key.
        let admin = (
            try CoordinatorBinaryTests.write(users[0].certificatePEM, "admin.crt", in: coordinator.directory),
            try CoordinatorBinaryTests.write(users[0].keyPEM, "admin.key", in: coordinator.directory)
        )
        let owner = try TestUser(name: "service")
        let pem = owner.certificatePEM.replacingOccurrences(of: "\n", with: "\\n")
        let secrets =
            #"{"secrets":{"userKey":{"Key":"AAAAAAAAAAAAAAAAAAAAAA=="},"userCert":{"Cert":"\#(pem)","Private":"\#(owner.key.derRepresentation.base64EncodedString())"}}}"#
        #expect(try await coordinator.request("POST", "/api/v2/secrets", body: secrets, identity: admin).status == 200)
        let marble = try TestMarble()
        let activation = try await CoordinatorBinaryTests.activate(
            coordinator, root: try root.serializeAsPEM().derBytes, marble: marble,
            quote: try marble.quote(platform, enclave: enclave), type: "backend")
        let env = activation.parameters.env
        let marbleIdentity = (
            try CoordinatorBinaryTests.write(
                String(decoding: env["MARBLE_PREDEFINED_MARBLE_CERTIFICATE_CHAIN"] ?? Data(), as: UTF8.self),
                "marble.crt", in: coordinator.directory),
            try CoordinatorBinaryTests.write(
                String(decoding: env["MARBLE_PREDEFINED_PRIVATE_KEY"] ?? Data(), as: UTF8.self), "marble.key",
                in: coordinator.directory)
        )
        func counter(_ value: Int, as identity: (String, String)?) async throws -> (status: Int, json: [String: Any]) {
            try await coordinator.request(
                "POST", "/api/v2/monotonic-counter", body: #"{"name":"epoch","value":\#(value)}"#, identity: identity)
        }
        #expect(try await counter(5, as: nil).status == 401)
        #expect(try await counter(5, as: admin).status == 401, "a user is not a marble")
        for (value, previous) in [(5, 0), (2, 5), (9, 5)] {
            let answer = try await counter(value, as: marbleIdentity)
            #expect((answer.json["data"] as? [String: Any])?["value"] as? Int == previous, "\(answer.json)")
        }
        #expect(await coordinator.stop() == 0)
    }
}
