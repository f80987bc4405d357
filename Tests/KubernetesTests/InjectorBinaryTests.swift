import CoordinatorTesting
import Crypto
import Foundation
import JSONText
import SwiftASN1
import Testing
import X509

/// The real `marble-injector` binary over HTTPS, spoken to by curl: health, AdmissionReviews
/// answered with the request's UID and a patch, malformed bodies refused with 400 and the reason.
@Suite struct InjectorBinaryTests {
    static var binary: URL { TestData.product("marble-injector") }

    /// A CA and a certificate for 127.0.0.1 signed by it, as PEM files in `directory`.
    static func certificates(in directory: URL) throws -> (ca: String, cert: String, key: String) {
        let caKey = P256.Signing.PrivateKey()
        let key = P256.Signing.PrivateKey()
        let caName = try DistinguishedName { CommonName("injector test CA") }
        let now = Date()
        let ca = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(caKey.publicKey),
            notValidBefore: now.addingTimeInterval(-60), notValidAfter: now.addingTimeInterval(3600), issuer: caName,
            subject: caName, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true))
            }, issuerPrivateKey: .init(caKey))
        let leaf = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-60), notValidAfter: now.addingTimeInterval(3600), issuer: caName,
            subject: try DistinguishedName { CommonName("marble-injector.marblerun.svc") },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                SubjectAlternativeNames([.ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))])
                try ExtendedKeyUsage([.serverAuth])
            }, issuerPrivateKey: .init(caKey))
        func write(_ text: String, _ name: String) throws -> String {
            let url = directory.appendingPathComponent(name)
            try Data(text.utf8).write(to: url)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: url.path)
            return url.path
        }
        return (
            try write(ca.serializeAsPEM().pemString, "ca.pem"), try write(leaf.serializeAsPEM().pemString, "tls.crt"),
            try write(key.pemRepresentation, "tls.key")
        )
    }

    static func curl(_ arguments: [String]) async throws -> (status: Int, body: String) {
        let run = try await ProcessRunner.run(
            URL(fileURLWithPath: "/usr/bin/curl"), ["-sS", "--max-time", "10", "-w", "\n%{http_code}"] + arguments)
        let text = run.stdout
        guard let split = text.lastIndex(of: "\n"), let status = Int(text[text.index(after: split)...]) else {
            return (0, text + run.stderr)
        }
        return (status, String(text[..<split]))
    }

    /// The injector binary on 127.0.0.1:`port`, its output in `log`; the caller kills it.
    static func launch(port: Int, cert: String, key: String, arguments: [String], log: URL) throws -> Process {
        try Data().write(to: log)
        let handle = try FileHandle(forWritingTo: log)
        let process = Process()
        process.executableURL = binary
        process.arguments =
            ["--host", "127.0.0.1", "--port", "\(port)", "--tls-cert", cert, "--tls-key", key] + arguments
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }

    @Test func theWebhookAnswersReviewsOverTLSAndRefusesMalformedOnes() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("injector-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (ca, cert, key) = try Self.certificates(in: directory)
        let port = 31_400
        let era = directory.appendingPathComponent("era.json")
        try Data(
            #"{"coordinator": {"UniqueID": "ab12000000000000000000000000000000000000000000000000000000000000"}}"#.utf8
        ).write(to: era)
        // A trust file that is no era config (nor a root certificate) stops the injector before it serves.
        let notJSON = directory.appendingPathComponent("broken.json")
        try Data("coordinator: yes".utf8).write(to: notJSON)
        for (file, reason) in [(notJSON.path, "not a JSON object"), (era.path + ".pem", "cannot read")] {
            let refused = try await ProcessRunner.run(
                Self.binary, ["--tls-cert", cert, "--tls-key", key, "--trust-file", file, "--port", "\(port)"])
            #expect(refused.status != 0 && refused.stderr.contains(reason), "\(file): \(refused.stderr)")
        }
        let log = directory.appendingPathComponent("injector.log")
        let process = try Self.launch(
            port: port, cert: cert, key: key,
            arguments: [
                "--coordinator-address", "coordinator-mesh-api.marblerun:2001", "--trust-file", era.path,
                "--tls-reload-interval", "1",
            ],
            log: log)
        defer {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        let base = "https://127.0.0.1:\(port)"
        let deadline = ContinuousClock.now + .seconds(60)
        var probes = 0
        var health = (status: 0, body: "")
        while ContinuousClock.now < deadline || probes < 30 {
            probes += 1
            health = try await Self.curl(["--cacert", ca, "\(base)/healthz"])
            if health.status == 200 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        try #require(
            health.status == 200,
            "the injector did not come up: \(String(decoding: (try? Data(contentsOf: log)) ?? Data(), as: UTF8.self))")
        #expect(health.body.trimmingCharacters(in: .whitespacesAndNewlines) == "ok")

        let pod =
            #"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "voting-1", "namespace": "emojivoto", "labels": {"marblerun/marbletype": "voting-svc"}}, "spec": {"containers": [{"name": "voting", "image": "voting:1", "env": [{"name": "SECRET_TOKEN", "value": "do-not-log-me"}]}]}}"#
        func review(_ object: String, uid: String = "7f0b2c1e-0000-4000-8000-000000000001") -> String {
            #"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "\#(uid)", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "resource": {"group": "", "version": "v1", "resource": "pods"}, "namespace": "emojivoto", "operation": "CREATE", "object": \#(object)}}"#
        }
        let body = directory.appendingPathComponent("review.json")
        try Data(review(pod).utf8).write(to: body)
        let post = ["--cacert", ca, "-H", "Content-Type: application/json", "--data-binary", "@\(body.path)"]
        let admitted = try await Self.curl(post + ["\(base)/mutate"])
        #expect(admitted.status == 200, "\(admitted.body)")
        let answer = try JSONParser().parse(Array(admitted.body.utf8))
        #expect(answer["apiVersion"]?.stringValue == "admission.k8s.io/v1")
        #expect(answer["response"]?["uid"]?.stringValue == "7f0b2c1e-0000-4000-8000-000000000001")
        #expect(answer["response"]?["allowed"] == .bool(true))
        #expect(answer["response"]?["patchType"]?.stringValue == "JSONPatch")
        let patchText = try #require(
            answer["response"]?["patch"]?.stringValue.flatMap { Data(base64Encoded: $0) }.map {
                String(decoding: $0, as: UTF8.self)
            })
        #expect(
            patchText.contains("/spec/containers/0/env/-") && patchText.contains("EDG_MARBLE_COORDINATOR_ERA_CONFIG"))
        #expect(
            patchText.contains(
                #""marblerun/coordinator-era-config":"{\"coordinator\": {\"UniqueID\": \"ab12000000000000000000000000000000000000000000000000000000000000\"}}""#
            ),
            "\(patchText)")

        // An empty marble type: answered (200) with allowed false and the reason.
        try Data(review(pod.replacingOccurrences(of: "voting-svc", with: "")).utf8).write(to: body)
        let refused = try await Self.curl(post + ["\(base)/mutate"])
        let refusal = try JSONParser().parse(Array(refused.body.utf8))
        #expect(refused.status == 200 && refusal["response"]?["allowed"] == .bool(false), "\(refused.body)")
        #expect(refusal["response"]?["status"]?["message"]?.stringValue?.contains("empty") == true)

        // Malformed: not JSON, not a review, no request, no uid, a wrong content type, an oversized body.
        for (text, reason) in [
            ("{not json", "not JSON"),
            (#"{"apiVersion": "v1", "kind": "Pod"}"#, "not an admission.k8s.io/v1 AdmissionReview"),
            (#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}"#, "no request"),
            (review(pod, uid: ""), "no uid"),
        ] {
            try Data(text.utf8).write(to: body)
            let answer = try await Self.curl(post + ["\(base)/mutate"])
            #expect(answer.status == 400 && answer.body.contains(reason), "\(text): \(answer)")
        }
        let wrongType = try await Self.curl(
            ["--cacert", ca, "-H", "Content-Type: text/plain", "--data-binary", "@\(body.path)", "\(base)/mutate"])
        #expect(wrongType.status == 400 && wrongType.body.contains("application/json"), "\(wrongType)")
        try Data(repeating: 0x20, count: 4 << 20).write(to: body)
        let oversized = try await Self.curl(post + ["\(base)/mutate"])
        #expect(oversized.status == 413, "\(oversized.status)")
        // TLS 1.1 is refused.
        let old = try await Self.curl(["--cacert", ca, "--tls-max", "1.1", "\(base)/healthz"])
        #expect(old.status != 200)

        let logged = String(decoding: try Data(contentsOf: log), as: UTF8.self)
        #expect(logged.contains("emojivoto/voting-1"), "the log names the pod: \(logged)")
        #expect(!logged.contains("do-not-log-me"), "the pod's environment is never logged")

        // A renewed certificate (another CA here) replaces the files, as cert-manager does in the
        // Secret: new handshakes get it without a restart.
        let renewed = directory.appendingPathComponent("renewed")
        try FileManager.default.createDirectory(at: renewed, withIntermediateDirectories: true)
        let (newCA, newCert, newKey) = try Self.certificates(in: renewed)
        for (source, target) in [(newKey, key), (newCert, cert)] {
            try #require(rename(source, target) == 0, "rename \(source): errno \(errno)")
        }
        let reloadDeadline = ContinuousClock.now + .seconds(30)
        var reloaded = (status: 0, body: "")
        probes = 0
        while ContinuousClock.now < reloadDeadline || probes < 30 {
            probes += 1
            reloaded = try await Self.curl(["--cacert", newCA, "\(base)/healthz"])
            if reloaded.status == 200 { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(reloaded.status == 200, "the renewed certificate was not served: \(reloaded)")
        let stale = try await Self.curl(["--cacert", ca, "\(base)/healthz"])
        #expect(stale.status != 200, "the old CA still verifies the webhook")
        #expect(process.isRunning)
    }
}
