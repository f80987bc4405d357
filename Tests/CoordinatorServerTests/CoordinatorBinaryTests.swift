import Attestation
import CoordinatorTesting
import Crypto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Manifest
import MeshAPI
import Store
import SwiftASN1
import Testing
import X509

@testable import CoordinatorServer

/// The real `coordinator` binary on loopback, driven by curl, openssl and a gRPC client.
@Suite(.serialized)
struct CoordinatorBinaryTests {
    static let predefinedChain = "MARBLE_PREDEFINED_MARBLE_CERTIFICATE_CHAIN"

    /// Activates over mutual TLS, trusting only the Coordinator root for the server side.
    static func activate(
        _ coordinator: CoordinatorProcess, root: [UInt8], marble: TestMarble, quote: [UInt8], type: String,
        uuid: UUID = UUID()
    ) async throws -> Rpc_ActivationResp {
        var request = Rpc_ActivationReq()
        request.quote = Data(quote)
        request.csr = Data(marble.csr)
        request.marbleType = type
        request.uuid = uuid.uuidString
        return try await send(request, to: coordinator, root: root, as: marble)
    }

    /// Sends a request as it is, with `marble`'s certificate (or none).
    static func send(
        _ request: Rpc_ActivationReq, to coordinator: CoordinatorProcess, root: [UInt8], as marble: TestMarble?
    ) async throws -> Rpc_ActivationResp {
        let security: HTTP2ClientTransport.Posix.TransportSecurity
        if let marble {
            security = .mTLS(
                certificateChain: [.bytes(marble.certificate, format: .der)],
                privateKey: .bytes(Array(marble.key.derRepresentation), format: .der)
            ) { $0.trustRoots = .certificates([.bytes(root, format: .der)]) }
        } else {
            security = .tls { $0.trustRoots = .certificates([.bytes(root, format: .der)]) }
        }
        let transport = try HTTP2ClientTransport.Posix(
            target: .ipv4(address: "127.0.0.1", port: coordinator.meshPort), transportSecurity: security)
        return try await withGRPCClient(transport: transport) { client in
            try await Rpc_Marble.Client(wrapping: client).activate(request)
        }
    }

    static func expectRefusal(
        _ code: RPCError.Code, _ what: String = "", _ body: () async throws -> Rpc_ActivationResp
    ) async {
        do {
            _ = try await body()
            Issue.record("\(what): the activation was accepted; expected \(code)")
        } catch let error as RPCError {
            #expect(error.code == code, "\(what): \(error)")
            #expect(!error.message.isEmpty)
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    static func pemBlocks(_ text: String) throws -> [[UInt8]] {
        try text.components(separatedBy: "-----END CERTIFICATE-----").filter { $0.contains("BEGIN") }.map {
            var serializer = DER.Serializer()
            try serializer.serialize(try Certificate(pemEncoded: $0 + "-----END CERTIFICATE-----"))
            return serializer.serializedBytes
        }
    }

    static func write(_ text: String, _ name: String, in directory: URL) throws -> String {
        let url = directory.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url.path
    }

    static func pem(_ der: [UInt8]) throws -> String {
        try Certificate(derEncoded: der).serializeAsPEM().pemString + "\n"
    }

    @Test func setsAManifestAndActivatesAMarbleWhoseChainOpenSSLVerifies() async throws {
        let coordinator = try CoordinatorProcess()
        try await coordinator.start(extraArguments: ["--dns-names", "localhost,127.0.0.1"])

        // The quote binds the root and the nonce and verifies against the simulated platform
        // with the identity `marblerun package-info` gives for the binary.
        let nonce: [UInt8] = [0xFB, 0xFF, 0x01, 0x02, 0x03]
        let quoteAnswer = try await coordinator.request("GET", "/api/v2/quote?nonce=-_8BAgM=")
        #expect(quoteAnswer.status == 200 && quoteAnswer.json["status"] as? String == "success")
        let data = try #require(quoteAnswer.json["data"] as? [String: Any])
        let chain = try Self.pemBlocks(try #require(data["cert"] as? String))
        try #require(chain.count == 2)
        let (intermediate, root) = (chain[0], chain[1])
        let quoteText = try #require(data["quote"] as? String)
        let quote = try #require(Data(base64Encoded: quoteText))
        let platform = try SimulatedPlatform.load(from: coordinator.simulationDirectory)
        let verified = try platform.verifier.verify(
            try Quote(parsing: Array(quote)), collateral: platform.collateral, at: Date())
        #expect(Array(verified.reportData.prefix(32)) == Array(SHA256.hash(data: root + nonce)))
        #expect(verified.uniqueID == (try SimulatedEnclave.uniqueID(of: CoordinatorProcess.binary)))
        #expect(verified.signerID == platform.defaultSigner.signerID)

        let rootFile = try Self.write(try Self.pem(root), "root.pem", in: coordinator.directory)
        let intermediateFile = try Self.write(try Self.pem(intermediate), "intermediate.pem", in: coordinator.directory)
        let marble = try TestMarble()
        let enclave = ActivationManifest.enclave(on: platform)

        // Before a manifest: refused with FAILED_PRECONDITION.
        await Self.expectRefusal(.failedPrecondition) {
            try await Self.activate(
                coordinator, root: root, marble: marble, quote: try marble.quote(platform, enclave: enclave),
                type: "backend")
        }

        // curl trusts only the root it was given: the client API presents that root.
        let manifest = ActivationManifest.bytes(signerID: enclave.signerID, maxActivations: 1)
        let body = "{\"manifest\":\"\(Data(manifest).base64EncodedString())\"}"
        let set = try await coordinator.request("POST", "/api/v2/manifest", body: body, cacert: rootFile)
        #expect(set.status == 200, "\(set.json)")
        let status = try await coordinator.request("GET", "/api/v2/status", cacert: rootFile)
        #expect((status.json["data"] as? [String: Any])?["code"] as? Int == 3)
        let again = try await coordinator.request("POST", "/api/v2/manifest", body: body, cacert: rootFile)
        #expect(again.status == 409 && again.json["status"] as? String == "fail")

        // The marble is activated; openssl verifies its certificate up to the root.
        let response = try await Self.activate(
            coordinator, root: root, marble: marble, quote: try marble.quote(platform, enclave: enclave),
            type: "backend")
        #expect(response.parameters.argv == ["backend", "--serve"])
        #expect(response.parameters.env["GREETING"] == Data("hi".utf8))
        let marbleChain = String(decoding: try #require(response.parameters.env[Self.predefinedChain]), as: UTF8.self)
        let leafFile = try Self.write(
            try Self.pem(try #require(try Self.pemBlocks(marbleChain).first)), "marble.pem", in: coordinator.directory)
        let openssl = try await ProcessRunner.run(
            URL(fileURLWithPath: "/usr/bin/openssl"),
            ["verify", "-CAfile", rootFile, "-untrusted", intermediateFile, leafFile])
        #expect(openssl.status == 0, "\(openssl.stdout) \(openssl.stderr)")
        #expect(openssl.stdout.contains("OK"))

        // Refusals over the wire, each with its gRPC status.
        await Self.expectRefusal(.notFound) {
            try await Self.activate(
                coordinator, root: root, marble: marble, quote: try marble.quote(platform, enclave: enclave),
                type: "frontend")
        }
        let thief = try TestMarble()
        await Self.expectRefusal(.permissionDenied) {
            try await Self.activate(
                coordinator, root: root, marble: thief,
                quote: try marble.quote(platform, enclave: enclave), type: "backend")
        }
        var oldVersion = enclave
        oldVersion.securityVersion = 1
        await Self.expectRefusal(.permissionDenied) {
            try await Self.activate(
                coordinator, root: root, marble: marble, quote: try marble.quote(platform, enclave: oldVersion),
                type: "backend")
        }
        await Self.expectRefusal(.resourceExhausted) {
            try await Self.activate(
                coordinator, root: root, marble: marble, quote: try marble.quote(platform, enclave: enclave),
                type: "backend")
        }

        let metrics = try await coordinator.curl(["http://127.0.0.1:\(coordinator.metricsPort)/metrics"]).stdout
        #expect(metrics.contains("coordinator_activations_success_total{marble_type=\"backend\"} 1"))
        // Four for backend once it was a marble type of the manifest; the one before the manifest
        // and frontend (no marble type of it) are not labels of their own.
        #expect(metrics.contains("coordinator_activations_total{marble_type=\"backend\"} 4"), "\(metrics)")
        #expect(metrics.contains("coordinator_activations_total{marble_type=\"unknown\"} 2"), "\(metrics)")
        #expect(!metrics.contains("frontend"))
        #expect(metrics.contains("coordinator_http_request_duration_seconds"))

        // A graceful stop and a restart keep the root and the manifest.
        let fingerprint =
            (try await coordinator.request("GET", "/api/v2/manifest").json["data"] as? [String: Any])?[
                "manifestFingerprint"] as? String
        #expect(fingerprint == ManifestDocument.fingerprint(of: manifest))
        #expect(await coordinator.stop() == 0)
        #expect(coordinator.log().contains("SIMULATION MODE"))
        try await coordinator.start()
        let restarted = try await coordinator.request("GET", "/api/v2/quote", cacert: rootFile)
        let restartedChain = try Self.pemBlocks(
            try #require((restarted.json["data"] as? [String: Any])?["cert"] as? String))
        #expect(restartedChain.last == root)
        let manifestAfter = try await coordinator.request("GET", "/api/v2/manifest", cacert: rootFile)
        #expect((manifestAfter.json["data"] as? [String: Any])?["manifestFingerprint"] as? String == fingerprint)
        await Self.expectRefusal(.resourceExhausted) {
            try await Self.activate(
                coordinator, root: root, marble: marble, quote: try marble.quote(platform, enclave: enclave),
                type: "backend")
        }
        #expect(await coordinator.stop() == 0)
    }

    /// An activation made by Python grpcio from MarbleRun's proto (Tests/Support/marble_activate.py):
    /// exit status 0 and the parameters, or 2 and `{code, details}`.
    static func pythonActivate(
        _ coordinator: CoordinatorProcess, rootFile: String, marble: TestMarble, quote: [UInt8], uuid: UUID = UUID()
    ) async throws -> (status: Int32, json: [String: Any]) {
        let directory = coordinator.directory
        let name = UUID().uuidString
        let cert = try write(try pem(marble.certificate), "\(name).pem", in: directory)
        let key = try write(marble.key.pemRepresentation, "\(name).key", in: directory)
        let csr = directory.appendingPathComponent("\(name).csr")
        try Data(marble.csr).write(to: csr)
        let quoteFile = directory.appendingPathComponent("\(name).quote")
        try Data(quote).write(to: quoteFile)
        let result = try await ProcessRunner.run(
            TestData.python,
            [
                TestData.packageRoot.appendingPathComponent("Tests/Support/marble_activate.py").path,
                TestData.marblerunProto.path, "127.0.0.1:\(coordinator.meshPort)", rootFile, cert, key,
                quoteFile.path, csr.path, "backend", uuid.uuidString,
            ])
        let json = try? JSONSerialization.jsonObject(with: result.stdoutData) as? [String: Any]
        return (result.status, json ?? ["stderr": result.stderr])
    }

    /// A Coordinator started by MarbleRun's environment names with ActivationManifest set at
    /// start, for the Python client: its platform, the manifest's enclave, and the root (DER and a
    /// PEM file).
    static func startedForPython(maxActivations: Int = 2, extraArguments: [String] = []) async throws -> (
        coordinator: CoordinatorProcess, platform: SimulatedPlatform, enclave: SimulatedEnclave, root: [UInt8],
        rootFile: String
    ) {
        try #require(
            FileManager.default.isExecutableFile(atPath: TestData.python.path),
            "no Python with grpcio at \(TestData.python.path): run ./scripts/test, which creates it")
        let coordinator = try CoordinatorProcess()
        let platform = try SimulatedPlatform.generate()
        try platform.write(to: coordinator.simulationDirectory)
        let enclave = ActivationManifest.enclave(on: platform)
        let manifestFile = coordinator.directory.appendingPathComponent("manifest.json")
        try Data(ActivationManifest.bytes(signerID: enclave.signerID, maxActivations: maxActivations)).write(
            to: manifestFile)
        // MarbleRun's environment names configure the binary as its flags do.
        try await coordinator.start(
            extraArguments: extraArguments, environment: ["EDG_STARTUP_MANIFEST": manifestFile.path])
        let chainText = try #require(
            (try await coordinator.request("GET", "/api/v2/quote").json["data"] as? [String: Any])?["cert"] as? String)
        let root = try #require(try pemBlocks(chainText).last)
        let rootFile = try write(try pem(root), "root.pem", in: coordinator.directory)
        return (coordinator, platform, enclave, root, rootFile)
    }

    /// MarbleRun's wire format: a Python grpcio client generated from MarbleRun's own proto.
    @Test func aPythonGRPCClientFromMarbleRunsProtoIsActivated() async throws {
        let (coordinator, platform, enclave, root, rootFile) = try await Self.startedForPython()
        let status = try await coordinator.request("GET", "/api/v2/status")
        #expect((status.json["data"] as? [String: Any])?["code"] as? Int == 3)
        let marble = try TestMarble()
        func activate(quote: [UInt8], uuid: UUID = UUID()) async throws -> (status: Int32, json: [String: Any]) {
            try await Self.pythonActivate(coordinator, rootFile: rootFile, marble: marble, quote: quote, uuid: uuid)
        }

        let uuid = UUID()
        let accepted = try await activate(quote: try marble.quote(platform, enclave: enclave), uuid: uuid)
        #expect(accepted.status == 0, "\(accepted.json)")
        #expect(accepted.json["argv"] as? [String] == ["backend", "--serve"])
        let env = try #require(accepted.json["env"] as? [String: String])
        let chain = String(decoding: try #require(Data(base64Encoded: env[Self.predefinedChain] ?? "")), as: UTF8.self)
        let leaf = try Certificate(derEncoded: try #require(try Self.pemBlocks(chain).first))
        // MarbleRun's certificate names the marble by its UUID.
        #expect(leaf.subject.description.contains(uuid.uuidString.lowercased()), "\(leaf.subject)")

        let replayed = try await activate(quote: try marble.quote(platform, enclave: enclave, boundTo: root))
        #expect(replayed.status == 2)
        #expect(replayed.json["code"] as? String == "PERMISSION_DENIED", "\(replayed.json)")

        // Every activation counts, under a known UUID too: MaxActivations 2 ends the third.
        let second = try await activate(quote: try marble.quote(platform, enclave: enclave), uuid: uuid)
        #expect(second.status == 0, "\(second.json)")
        let third = try await activate(quote: try marble.quote(platform, enclave: enclave), uuid: uuid)
        #expect(third.json["code"] as? String == "RESOURCE_EXHAUSTED", "\(third.json)")
        #expect(await coordinator.stop() == 0)
    }

    /// A marble's certificate names only the DNS names and IPs its CSR asks for; a CSR asking
    /// for a URI, an email, a directory name or an otherName is refused with the reason.
    @Test func aCSRAskingForOtherKindsOfNamesIsRefusedOverTheWire() async throws {
        let (coordinator, platform, enclave, _, rootFile) = try await Self.startedForPython(maxActivations: 0)
        func activate(_ marble: TestMarble) async throws -> (status: Int32, json: [String: Any]) {
            try await Self.pythonActivate(
                coordinator, rootFile: rootFile, marble: marble, quote: try marble.quote(platform, enclave: enclave))
        }
        let hostile: [GeneralName] = [
            .uniformResourceIdentifier("spiffe://cluster/ns/default/sa/database"),
            .rfc822Name("admin@example.com"),
            .directoryName(try DistinguishedName { CommonName("database") }),
            .otherName(
                GeneralName.OtherName(
                    typeID: [1, 3, 6, 1, 4, 1, 311, 20, 2, 3], value: try ASN1Any(erasing: ASN1UTF8String("db@corp")))),
        ]
        for name in hostile {
            let refused = try await activate(try TestMarble(alternativeNames: [.dnsName("web"), name]))
            #expect(refused.status == 2, "\(name): \(refused.json)")
            #expect(refused.json["code"] as? String == "INVALID_ARGUMENT", "\(name): \(refused.json)")
            #expect((refused.json["details"] as? String)?.contains("DNS names and IP addresses only") == true)
        }
        let accepted = try await activate(
            try TestMarble(alternativeNames: [
                .dnsName("web"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
            ]))
        #expect(accepted.status == 0, "\(accepted.json)")
        let env = try #require(accepted.json["env"] as? [String: String])
        let chain = String(decoding: try #require(Data(base64Encoded: env[Self.predefinedChain] ?? "")), as: UTF8.self)
        let leaf = try Certificate(derEncoded: try #require(try Self.pemBlocks(chain).first))
        let names = try #require(try leaf.extensions.subjectAlternativeNames)
        #expect(Array(names) == [.dnsName("web"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))])
        #expect(await coordinator.stop() == 0)
    }

    /// An emptied or deleted database beside a seal directory that held a state stops start-up
    /// with a message naming the file; it never becomes a fresh state with a new root.
    @Test(arguments: ["truncated", "deleted"])
    func anEmptiedOrDeletedDatabaseStopsStartUp(_ damage: String) async throws {
        let coordinator = try CoordinatorProcess()
        let manifestFile = coordinator.directory.appendingPathComponent("manifest.json")
        try Data(ActivationManifest.bytes(signerID: [UInt8](repeating: 7, count: 32))).write(to: manifestFile)
        try await coordinator.start(extraArguments: ["--startup-manifest", manifestFile.path])
        #expect(await coordinator.stop() == 0)

        let database = coordinator.sealDirectory.appendingPathComponent("coordinator.sqlite")
        for suffix in ["-wal", "-shm"] {
            try? FileManager.default.removeItem(atPath: database.path + suffix)
        }
        if damage == "truncated" {
            try FileHandle(forWritingTo: database).truncate(atOffset: 0)
        } else {
            try FileManager.default.removeItem(at: database)
        }
        for attempt in 1...2 {
            // Refused every time: the refusal itself changes nothing.
            if (try? await coordinator.start()) != nil {
                Issue.record("attempt \(attempt): the Coordinator started a fresh state over the \(damage) database")
                _ = await coordinator.stop()
                return
            }
            #expect(await coordinator.exitStatus() == 1)
            let log = coordinator.log()
            #expect(log.contains(database.path) && log.contains("empty or missing"), "\(log.suffix(800))")
        }
    }

    @Test func aFlippedByteInTheSealedStateStopsStartUpAndReplacesNothing() async throws {
        let coordinator = try CoordinatorProcess()
        let manifestFile = coordinator.directory.appendingPathComponent("manifest.json")
        try Data(ActivationManifest.bytes(signerID: [UInt8](repeating: 7, count: 32))).write(to: manifestFile)
        try await coordinator.start(extraArguments: ["--startup-manifest", manifestFile.path])
        let root =
            (try await coordinator.request("GET", "/api/v2/quote").json["data"] as? [String: Any])?["cert"] as? String
        #expect(await coordinator.stop() == 0)

        let store = try await SQLiteStore.open(
            path: coordinator.sealDirectory.appendingPathComponent("coordinator.sqlite").path)
        var largest: (key: String, value: StoredValue)?
        for key in try await store.keys(withPrefix: "k/") + store.keys(withPrefix: "o/") {
            let value = try #require(try await store.read(key))
            if value.bytes.count > largest?.value.bytes.count ?? 0 { largest = (key, value) }
        }
        let record = try #require(largest)
        var flipped = record.value.bytes
        flipped[flipped.count / 3] ^= 0x20
        try await store.commit([StoreWrite(key: record.key, value: flipped, expectedVersion: record.value.version)])
        await store.close()

        await #expect(throws: TestFailure.self) { try await coordinator.start() }
        #expect(await coordinator.exitStatus() == 1)
        #expect(coordinator.log().contains("tampered"), "\(coordinator.log().suffix(600))")

        // Nothing was replaced: with the byte restored, the same Coordinator comes back.
        // (The ciphertext authenticates only at its own version: the row goes back as it was.)
        try await SQLiteFile.overwrite(
            coordinator.sealDirectory.appendingPathComponent("coordinator.sqlite").path, key: record.key,
            value: record.value.bytes, version: record.value.version)
        try await coordinator.start()
        let again =
            (try await coordinator.request("GET", "/api/v2/quote").json["data"] as? [String: Any])?["cert"] as? String
        #expect(again == root && root != nil)
        let status = try await coordinator.request("GET", "/api/v2/status")
        #expect((status.json["data"] as? [String: Any])?["code"] as? Int == 3)
        #expect(await coordinator.stop() == 0)
    }

    @Test func malformedActivationsAreRefusedWithTheirStatusAndCountNothing() async throws {
        let coordinator = try CoordinatorProcess()
        let platform = try SimulatedPlatform.generate()
        try platform.write(to: coordinator.simulationDirectory)
        let enclave = ActivationManifest.enclave(on: platform)
        let manifestFile = coordinator.directory.appendingPathComponent("manifest.json")
        try Data(ActivationManifest.bytes(signerID: enclave.signerID, maxActivations: 1)).write(to: manifestFile)
        try await coordinator.start(
            extraArguments: ["--startup-manifest", manifestFile.path, "--dns-names", "localhost,127.0.0.1"])
        let chainText = try #require(
            (try await coordinator.request("GET", "/api/v2/quote").json["data"] as? [String: Any])?["cert"] as? String)
        let root = try #require(try Self.pemBlocks(chainText).last)
        let marble = try TestMarble()
        func request(quote: [UInt8], csr: [UInt8]? = nil, uuid: String = UUID().uuidString) -> Rpc_ActivationReq {
            var request = Rpc_ActivationReq()
            request.quote = Data(quote)
            request.csr = Data(csr ?? marble.csr)
            request.marbleType = "backend"
            request.uuid = uuid
            return request
        }
        let good = try marble.quote(platform, enclave: enclave)
        let cases: [(String, Rpc_ActivationReq, RPCError.Code)] = [
            ("garbage quote", request(quote: Array("not a quote".utf8)), .permissionDenied),
            ("truncated quote", request(quote: Array(good.prefix(good.count / 2))), .permissionDenied),
            ("empty quote", request(quote: []), .permissionDenied),
            ("not a UUID", request(quote: good, uuid: "../../etc"), .invalidArgument),
            ("not a CSR", request(quote: good, csr: [0x30, 0x03, 0x02, 0x01, 0x00]), .invalidArgument),
            // Over the 1 MiB limit grpc-swift resets the stream before the handler runs: the client sees UNAVAILABLE.
            ("2 MiB request", request(quote: [UInt8](repeating: 7, count: 2 << 20)), .unavailable),
        ]
        for (name, bad, code) in cases {
            await Self.expectRefusal(code, name) { try await Self.send(bad, to: coordinator, root: root, as: marble) }
        }
        // Without a client certificate the TLS handshake itself fails.
        await #expect(throws: (any Error).self) {
            try await Self.send(request(quote: good), to: coordinator, root: root, as: nil)
        }
        // None of these counted: the one activation MaxActivations allows still succeeds.
        let response = try await Self.send(request(quote: good), to: coordinator, root: root, as: marble)
        #expect(response.parameters.argv == ["backend", "--serve"])
        #expect(await coordinator.stop() == 0)
    }

    @Test func badRESTInputGetsAJSendFailAndChangesNothing() async throws {
        let coordinator = try CoordinatorProcess()
        try await coordinator.start()
        let huge = coordinator.directory.appendingPathComponent("huge.json")
        try Data(count: 100 << 20).write(to: huge)
        let cases: [(method: String, path: String, body: String?, file: String?, status: Int)] = [
            ("POST", "/api/v2/manifest", "{not json", nil, 400),
            ("POST", "/api/v2/manifest", "{\"manifest\": \"%%%\"}", nil, 400),
            ("POST", "/api/v2/manifest", "{\"manifest\": 5}", nil, 400),
            ("POST", "/api/v2/manifest", "{\"manifest\": \"e30=\", \"Extra\": 1}", nil, 400),
            ("POST", "/api/v2/manifest", "[]", nil, 400),
            ("POST", "/api/v2/manifest", "", nil, 400),
            ("POST", "/api/v2/manifest", "{\"manifest\": \"e30=\"}", nil, 400),
            ("POST", "/manifest", "{\"Packages\": 1}", nil, 400),
            ("POST", "/api/v2/manifest", nil, huge.path, 413),
            ("DELETE", "/api/v2/status", nil, nil, 405),
            ("PUT", "/api/v2/manifest", "{}", nil, 405),
            ("GET", "/api/v2/quote?nonce=***", nil, nil, 400),
            ("GET", "/api/v2/nothing", nil, nil, 404),
            // Refused by the HTTP parser, before any route: still an envelope (it had an empty body).
            ("GET", "/api/v2/status?padding=" + String(repeating: "a", count: 70_000), nil, nil, 400),
            // The recovery endpoints outside recovery mode (they were 404, without a 405 for other methods).
            ("POST", "/api/v2/recover", "{}", nil, 409),
            ("GET", "/api/v2/recover/public-key", nil, nil, 409),
        ]
        for item in cases {
            let answer = try await coordinator.request(item.method, item.path, body: item.body, bodyFile: item.file)
            #expect(answer.status == item.status, "\(item.method) \(item.path): \(answer.json)")
            #expect(answer.json["status"] as? String == "fail", "\(item.method) \(item.path)")
            #expect(!((answer.json["message"] as? String) ?? "").isEmpty)
        }
        let status = try await coordinator.request("GET", "/api/v2/status")
        #expect((status.json["data"] as? [String: Any])?["code"] as? Int == 2)
        let v1 = try await coordinator.request("GET", "/status")
        #expect((v1.json["data"] as? [String: Any])?["StatusCode"] as? Int == 2)
        #expect(await coordinator.stop() == 0)
    }

    /// Every path answers its own methods; any other method gets 405 with an `Allow` header
    /// (RFC 9110) naming exactly the methods the path answers. Probing every path with every
    /// method also keeps the table behind `Allow` true to the routes.
    @Test func aWrongMethodGets405WithAnAllowHeaderThatMatchesTheRoutes() async throws {
        let coordinator = try CoordinatorProcess()
        try await coordinator.start()
        try await Self.expectAllowHeadersMatchTheRoutes(coordinator)
        #expect(await coordinator.stop() == 0)
    }

    /// The same in recovery mode, where most routes answer 409: a POST-only path was 405 there
    /// with `Allow: GET, POST`, and `/api/v2/sign-quote` had no route at all.
    @Test func aWrongMethodGets405WithAnAllowHeaderThatMatchesTheRoutesInRecoveryMode() async throws {
        let coordinator = try CoordinatorProcess()
        _ = try await RecoveryOverwriteTests.inRecovery(coordinator)
        try await Self.expectAllowHeadersMatchTheRoutes(coordinator)
        #expect(await coordinator.stop() == 0)
    }

    static func expectAllowHeadersMatchTheRoutes(_ coordinator: CoordinatorProcess) async throws {
        for (path, allowed) in ClientAPI.allowedMethods.sorted(by: { $0.key < $1.key }) {
            for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
                let result = try await coordinator.curl([
                    "-k", "-X", method, "-D", "-", "-o", "/dev/null", "--data-binary", "{}",
                    coordinator.clientURL + path,
                ])
                let headers = result.stdout.lowercased()
                let is405 = headers.hasPrefix("http/1.1 405")
                if allowed.map(\.rawValue).contains(method) {
                    #expect(!is405, "\(method) \(path) is routed, but answered 405")
                } else {
                    #expect(is405, "\(method) \(path): \(headers.prefix(40))")
                    let allow = allowed.map(\.rawValue).joined(separator: ", ").lowercased()
                    #expect(headers.contains("allow: \(allow)\r\n"), "\(method) \(path): \(headers)")
                }
            }
        }
    }

    /// Activation counters are labelled only with the manifest's marble types: whatever a client
    /// sends otherwise is one fixed label. Once a manifest is set, each type's counters exist at 0.
    @Test func activationMetricsNameOnlyTheManifestsMarbleTypes() async throws {
        let coordinator = try CoordinatorProcess()
        try await coordinator.start(extraArguments: ["--dns-names", "localhost,127.0.0.1"])
        let platform = try SimulatedPlatform.load(from: coordinator.simulationDirectory)
        let enclave = ActivationManifest.enclave(on: platform)
        try await coordinator.setManifest(ActivationManifest.bytes(signerID: enclave.signerID, maxActivations: 0))
        func metrics() async throws -> String {
            try await coordinator.curl(["http://127.0.0.1:\(coordinator.metricsPort)/metrics"]).stdout
        }
        let deadline = ContinuousClock.now + .seconds(20)
        var text = try await metrics()
        while !text.contains(#"coordinator_activations_total{marble_type="probe"} 0"#), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            text = try await metrics()
        }
        for type in ["backend", "probe"] {
            #expect(text.contains(#"coordinator_activations_total{marble_type="\#(type)"} 0"#), "\(text)")
            #expect(text.contains(#"coordinator_activations_success_total{marble_type="\#(type)"} 0"#))
        }
        let root = try await RecoveryAPITests.root(coordinator).derBytes()
        let marble = try TestMarble()
        for index in 0..<20 {
            _ = try? await Self.activate(
                coordinator, root: root, marble: marble, quote: try marble.quote(platform, enclave: enclave),
                type: "made-up-\(index)")
        }
        text = try await metrics()
        #expect(!text.contains("made-up"), "a client's marble type became a label")
        #expect(text.contains(#"coordinator_activations_total{marble_type="unknown"} 20"#), "\(text)")
        #expect(await coordinator.stop() == 0)
    }
}
