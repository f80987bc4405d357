import CoordinatorTesting
import Foundation
import Manifest
import Testing

/// One rule: a change to the fixture and the problems it must (and only it must) cause.
struct RuleCase: Sendable, CustomTestStringConvertible {
    typealias Expected = (severity: ManifestProblem.Severity, code: ManifestProblem.Code, path: String)

    var name: String
    var change: @Sendable (inout [String: Any]) -> Void
    /// Empty: the change is accepted without any problem.
    var expected: [Expected]
    var strict = false

    var testDescription: String { name }

    static func rejected(
        _ name: String, _ code: ManifestProblem.Code, at path: String, strict: Bool = false,
        _ change: @escaping @Sendable (inout [String: Any]) -> Void
    ) -> RuleCase {
        RuleCase(name: name, change: change, expected: [(.error, code, path)], strict: strict)
    }

    static func warned(
        _ name: String, _ code: ManifestProblem.Code, at path: String,
        _ change: @escaping @Sendable (inout [String: Any]) -> Void
    ) -> RuleCase {
        RuleCase(name: name, change: change, expected: [(.warning, code, path)])
    }

    static func accepted(_ name: String, _ change: @escaping @Sendable (inout [String: Any]) -> Void) -> RuleCase {
        RuleCase(name: name, change: change, expected: [])
    }
}

@Suite struct ManifestRuleTests {
    @Test func fixturePassesEveryRule() {
        let document = RuleFixture.parse(RuleFixture.base())
        #expect(document.problems == [])
        #expect(document.isValid)
    }

    static let packageCases: [RuleCase] = [
        .rejected("no packages", .missingSection, at: "Packages") {
            $0["Packages"] = [String: Any]()
            $0.set(["Marbles"], ["m": ["Package": "x"]])
        },
        .rejected("UniqueID not hex", .notHex, at: "Packages.frontend.UniqueID") {
            $0.set(["Packages", "frontend", "UniqueID"], "<replace>")
        },
        .rejected("UniqueID 63 digits", .notHex, at: "Packages.frontend.UniqueID") {
            $0.set(["Packages", "frontend", "UniqueID"], String(RuleFixture.hexB.dropLast()))
        },
        .accepted("a TDX package: MRTD, RTMRs, MRSEAM, TDAttributes, XFAM") {
            $0["Packages"] = (($0["Packages"] as? [String: Any]) ?? [:]).merging([
                "td": [
                    "MRTD": String(repeating: "ab", count: 48), "RTMR0": String(repeating: "01", count: 48),
                    "RTMR3": String(repeating: "02", count: 48), "MRSEAM": String(repeating: "03", count: 48),
                    "TDAttributes": "0000000000000000", "XFAM": "e702060000000000",
                ]
            ]) { $1 }
        },
        .rejected("a TDX package with an SGX identity", .conflictingFields, at: "Packages.frontend") {
            $0.set(["Packages", "frontend", "MRTD"], String(repeating: "ab", count: 48))
        },
        .rejected("a TDX package without MRTD", .missingField, at: "Packages.td.MRTD") {
            $0["Packages"] = (($0["Packages"] as? [String: Any]) ?? [:]).merging([
                "td": ["RTMR1": String(repeating: "01", count: 48)]
            ]) { $1 }
        },
        .rejected("MRTD of an SGX length", .notHex, at: "Packages.td.MRTD") {
            $0["Packages"] = (($0["Packages"] as? [String: Any]) ?? [:]).merging([
                "td": ["MRTD": String(repeating: "ab", count: 32)]
            ]) { $1 }
        },
        .rejected("RTMR2 not hex", .notHex, at: "Packages.td.RTMR2") {
            $0["Packages"] = (($0["Packages"] as? [String: Any]) ?? [:]).merging([
                "td": ["MRTD": String(repeating: "ab", count: 48), "RTMR2": String(repeating: "zz", count: 48)]
            ]) { $1 }
        },
        .rejected("XFAM too long", .notHex, at: "Packages.td.XFAM") {
            $0["Packages"] = (($0["Packages"] as? [String: Any]) ?? [:]).merging([
                "td": ["MRTD": String(repeating: "ab", count: 48), "XFAM": String(repeating: "0", count: 18)]
            ]) { $1 }
        },
        .accepted("UniqueID upper-case hex") {
            $0.set(["Packages", "frontend", "UniqueID"], RuleFixture.hexB.uppercased())
        },
        .rejected("SignerID not hex", .notHex, at: "Packages.backend.SignerID") {
            $0.set(["Packages", "backend", "SignerID"], "zz")
        },
        .rejected("ProductID above 16 bits", .outOfRange, at: "Packages.backend.ProductID") {
            $0.set(["Packages", "backend", "ProductID"], 65536)
        },
        .accepted("ProductID 65535") { $0.set(["Packages", "backend", "ProductID"], 65535) },
        .rejected("SecurityVersion above 16 bits", .outOfRange, at: "Packages.backend.SecurityVersion") {
            $0.set(["Packages", "backend", "SecurityVersion"], 70000)
        },
        .rejected("UniqueID and SignerID together", .conflictingFields, at: "Packages.backend") {
            $0.set(["Packages", "backend", "UniqueID"], RuleFixture.hexB)
        },
        .warned("UniqueID and SignerID together in debug", .conflictingFields, at: "Packages.backend") {
            $0.set(["Packages", "backend", "UniqueID"], RuleFixture.hexB)
            $0.set(["Packages", "backend", "Debug"], true)
        },
        .rejected("SignerID without ProductID", .missingField, at: "Packages.backend.ProductID") {
            $0.set(["Packages", "backend", "ProductID"], nil)
        },
        .warned("SignerID without ProductID in debug", .missingField, at: "Packages.backend.ProductID") {
            $0.set(["Packages", "backend", "ProductID"], nil)
            $0.set(["Packages", "backend", "Debug"], true)
        },
        .rejected("no identity", .missingField, at: "Packages.frontend") {
            $0.set(["Packages", "frontend"], ["Debug": false])
        },
        .rejected("unknown TCB status", .invalidValue, at: "Packages.frontend.AcceptedTCBStatuses[1]") {
            $0.set(["Packages", "frontend", "AcceptedTCBStatuses"], ["UpToDate", "UpToDat"])
        },
        .accepted("known TCB statuses") {
            $0.set(["Packages", "frontend", "AcceptedTCBStatuses"], ["UpToDate", "SWHardeningNeeded"])
        },
        .warned("malformed advisory", .invalidValue, at: "Packages.frontend.AcceptedAdvisories[0]") {
            $0.set(["Packages", "frontend", "AcceptedAdvisories"], ["SA-615"])
        },
        .accepted("Intel advisory ID") { $0.set(["Packages", "frontend", "AcceptedAdvisories"], ["INTEL-SA-00615"]) },
        .rejected("CPUSVN of 3 bytes", .invalidValue, at: "Infrastructures.azure.CPUSVN") {
            $0.set(["Infrastructures", "azure", "CPUSVN"], [1, 2, 3])
        },
        .accepted("CPUSVN of 16 bytes") {
            $0.set(["Infrastructures", "azure"], ["CPUSVN": Array(0..<16), "QESVN": 2])
        },
    ]

    static let marbleCases: [RuleCase] = [
        .rejected("no marbles", .missingSection, at: "Marbles") { $0["Marbles"] = [String: Any]() },
        .rejected("unknown package", .unknownReference, at: "Marbles.frontend.Package") {
            $0.set(["Marbles", "frontend", "Package"], "frontent")
        },
        .rejected("no package", .missingField, at: "Marbles.frontend.Package") {
            $0.set(["Marbles", "frontend", "Package"], nil)
        },
        .rejected("unknown TLS tag", .unknownReference, at: "Marbles.backend.TLS[0]") {
            $0.set(["Marbles", "backend", "TLS"], ["wbe"])
        },
        .rejected("env name with =", .invalidValue, at: "Marbles.frontend.Parameters.Env[\"A=B\"]") {
            $0.set(["Marbles", "frontend", "Parameters"], ["Env": ["A=B": "x"]])
        },
        .rejected("NUL byte in Env", .nulByte, at: "Marbles.frontend.Parameters.Env.NULL_VAR") {
            $0.set(
                ["Marbles", "frontend", "Parameters"],
                ["Env": ["NULL_VAR": ["Encoding": "base64", "Data": "AE1hcmJsZQBSdW4A"]]])
        },
        .accepted("binary data in Files") {
            $0.set(
                ["Marbles", "frontend", "Parameters"],
                ["Files": ["/bin/blob": ["Encoding": "base64", "Data": "AE1hcmJsZQBSdW4A"]]])
        },
        .warned(
            "Coordinator-defined variable", .ignoredField,
            at: "Marbles.frontend.Parameters.Env.MARBLE_PREDEFINED_ROOT_CA"
        ) {
            $0.set(["Marbles", "frontend", "Parameters"], ["Env": ["MARBLE_PREDEFINED_ROOT_CA": "x"]])
        },
        .rejected("NUL byte in Argv", .nulByte, at: "Marbles.frontend.Parameters.Argv[1]") {
            $0.set(["Marbles", "frontend", "Parameters"], ["Argv": ["ok", "a\u{0}b"]])
        },
        .rejected("empty file path", .invalidValue, at: "Marbles.frontend.Parameters.Files[\"\"]") {
            $0.set(["Marbles", "frontend", "Parameters"], ["Files": ["": "x"]])
        },
        .rejected("unknown template function", .template, at: "Marbles.backend.Parameters.Env.KEY") {
            $0.set(["Marbles", "backend", "Parameters", "Env", "KEY"], "{{ hexa .Secrets.key }}")
        },
        .rejected("template names a missing secret", .unknownReference, at: "Marbles.backend.Parameters.Env.KEY") {
            $0.set(["Marbles", "backend", "Parameters", "Env", "KEY"], "{{ hex .Secrets.kye }}")
        },
        .rejected("pem of a symmetric key's Cert", .template, at: "Marbles.backend.Parameters.Files[\"/tmp/key\"]") {
            $0.set(["Marbles", "backend", "Parameters", "Files", "/tmp/key"], "{{ pem .Secrets.key.Cert }}")
        },
        .rejected("raw in Env on a key", .template, at: "Marbles.backend.Parameters.Env.KEY") {
            $0.set(["Marbles", "backend", "Parameters", "Env", "KEY"], "{{ raw .Secrets.key }}")
        },
        .accepted("raw in Env on a plain secret (MarbleRun's sample)") {
            $0.set(["Marbles", "backend", "Parameters", "Env", "API"], "{{ raw .Secrets.apiKey }}")
        },
        .accepted("broken template with NoTemplates") {
            $0.set(["Marbles", "backend", "Parameters", "Env", "KEY"], ["Data": "{{ if }}", "NoTemplates": true])
        },
        .accepted("previous secrets and pipelines") {
            $0.set(["Marbles", "backend", "Parameters", "Env", "KEY"], "{{ .Previous.Secrets.key | hex }}")
        },
    ]

    static let secretCases: [RuleCase] = [
        .rejected("symmetric key of 100 bits", .invalidSize, at: "Secrets.key.Size") {
            $0.set(["Secrets", "key", "Size"], 100)
        },
        .rejected("symmetric key without size", .invalidSize, at: "Secrets.key.Size") {
            $0.set(["Secrets", "key", "Size"], nil)
        },
        .accepted("symmetric key of 128 bits") { $0.set(["Secrets", "key", "Size"], 128) },
        .rejected("RSA of 1024 bits", .weakKey, at: "Secrets.rsaCert.Size") {
            $0.set(["Secrets", "rsaCert", "Size"], 1024)
        },
        .rejected("RSA without size", .invalidSize, at: "Secrets.rsaCert.Size") {
            $0.set(["Secrets", "rsaCert", "Size"], nil)
        },
        .accepted("RSA of 3072 bits") { $0.set(["Secrets", "rsaCert", "Size"], 3072) },
        .rejected("ECDSA of 255 bits", .invalidSize, at: "Secrets.cert.Size") {
            $0.set(["Secrets", "cert", "Size"], 255)
        },
        .accepted("ECDSA P-384") { $0.set(["Secrets", "cert", "Size"], 384) },
        .rejected("Ed25519 with a size", .invalidSize, at: "Secrets.edCert.Size") {
            $0.set(["Secrets", "edCert", "Size"], 256)
        },
        .rejected("plain secret not user-defined", .missingField, at: "Secrets.note.UserDefined") {
            $0.set(["Secrets", "note"], ["Type": "plain"])
        },
        .rejected("misspelt type", .invalidValue, at: "Secrets.key.Type") {
            $0.set(["Secrets", "key", "Type"], "symetric-key")
        },
        .rejected("no type", .missingField, at: "Secrets.edCert.Type") { $0.set(["Secrets", "edCert", "Type"], nil) },
        .rejected("ValidFor and NotAfter", .conflictingFields, at: "Secrets.cert.ValidFor") {
            $0.set(["Secrets", "cert", "Cert", "NotAfter"], "2030-01-01T00:00:00Z")
        },
        .accepted("NotAfter alone") {
            $0.set(["Secrets", "cert", "ValidFor"], nil)
            $0.set(["Secrets", "cert", "Cert", "NotAfter"], "2030-01-01T00:00:00Z")
        },
        .rejected("NotAfter not a time", .invalidValue, at: "Secrets.edCert.Cert.NotAfter") {
            $0.set(["Secrets", "edCert", "Cert"], ["NotAfter": "next year"])
        },
        .rejected("NotAfter before NotBefore", .invalidValue, at: "Secrets.edCert.Cert.NotAfter") {
            $0.set(
                ["Secrets", "edCert", "Cert"],
                ["NotBefore": "2030-01-01T00:00:00Z", "NotAfter": "2029-01-01T00:00:00Z"])
        },
        .rejected("common name of 65 characters", .outOfRange, at: "Secrets.cert.Cert.Subject.CommonName") {
            $0.set(["Secrets", "cert", "Cert", "Subject", "CommonName"], String(repeating: "c", count: 65))
        },
        .rejected("bad IP address", .invalidValue, at: "Secrets.cert.Cert.IPAddresses[1]") {
            $0.set(["Secrets", "cert", "Cert", "IPAddresses"], ["10.0.0.1", "300.1.1.1"])
        },
        .accepted("IPv4 and IPv6 addresses") {
            $0.set(["Secrets", "cert", "Cert", "IPAddresses"], ["10.0.0.1", "::1"])
        },
        .warned("Cert on a symmetric key", .ignoredField, at: "Secrets.perMarble.Cert") {
            $0.set(["Secrets", "perMarble", "Cert"], ["Subject": ["CommonName": "x"]])
        },
        .warned("Private given in the manifest", .ignoredField, at: "Secrets.perMarble") {
            $0.set(["Secrets", "perMarble", "Private"], "QUJD")
        },
    ]

    static let userAndRoleCases: [RuleCase] = [
        .rejected("placeholder certificate", .invalidCertificate, at: "Users.alice.Certificate") {
            $0.set(["Users", "alice", "Certificate"], "cert-alice")
        },
        .rejected("no certificate", .missingField, at: "Users.alice.Certificate") {
            $0.set(["Users", "alice", "Certificate"], nil)
        },
        .rejected("RSA-1024 user certificate", .weakKey, at: "Users.bob.Certificate") {
            $0.set(["Users", "bob", "Certificate"], RuleFixture.keys.weakUser)
        },
        .accepted("RSA-2048 user certificate") { $0.set(["Users", "bob", "Certificate"], RuleFixture.keys.rsaUser) },
        .rejected("two users with one certificate", .duplicateCertificate, at: "Users.bob.Certificate") {
            $0.set(["Users", "bob", "Certificate"], RuleFixture.keys.alice)
        },
        .rejected("unknown role", .unknownReference, at: "Users.bob.Roles[1]") {
            $0.set(["Users", "bob", "Roles"], ["writer", "writr"])
        },
        .rejected("resource type in lower case", .invalidValue, at: "Roles.reader.ResourceType") {
            $0.set(["Roles", "reader", "ResourceType"], "secrets")
        },
        .rejected("action of another type", .invalidValue, at: "Roles.updater.Actions[0]") {
            $0.set(["Roles", "updater", "Actions"], ["ReadSecret"])
        },
        .accepted("actions are case-insensitive") { $0.set(["Roles", "reader", "Actions"], ["readsecret"]) },
        .rejected("unknown package in a role", .unknownReference, at: "Roles.updater.ResourceNames[0]") {
            $0.set(["Roles", "updater", "ResourceNames"], ["backnd"])
        },
        .rejected("unknown secret in a role", .unknownReference, at: "Roles.reader.ResourceNames[2]") {
            $0.set(["Roles", "reader", "ResourceNames"], ["key", "apiKey", "nothere"])
        },
        .rejected("read of a per-marble secret", .permission, at: "Roles.reader.ResourceNames[0]") {
            $0.set(["Roles", "reader", "ResourceNames"], ["perMarble"])
        },
        .warned("write of a generated secret", .permission, at: "Roles.writer.ResourceNames[0]") {
            $0.set(["Roles", "writer", "ResourceNames"], ["key"])
        },
        .rejected("Manifest role with names", .invalidValue, at: "Roles.manifest.ResourceNames") {
            $0.set(["Roles", "manifest", "ResourceNames"], ["x"])
        },
        .warned("role without actions", .missingField, at: "Roles.writer.Actions") {
            $0.set(["Roles", "writer", "Actions"], [String]())
        },
    ]

    static let tlsRecoveryConfigCases: [RuleCase] = [
        .rejected("incoming without port", .missingField, at: "TLS.web.Incoming[0].Port") {
            $0.set(["TLS", "web", "Incoming"], [["Addr": ""]])
        },
        .rejected("port not a number", .invalidValue, at: "TLS.web.Outgoing[0].Port") {
            $0.set(["TLS", "web", "Outgoing"], [["Addr": "a", "Port": "http"]])
        },
        .rejected("port above 65535", .invalidValue, at: "TLS.web.Outgoing[0].Port") {
            $0.set(["TLS", "web", "Outgoing"], [["Addr": "a", "Port": "70000"]])
        },
        .rejected("outgoing without address", .missingField, at: "TLS.web.Outgoing[0].Addr") {
            $0.set(["TLS", "web", "Outgoing"], [["Port": "80"]])
        },
        .rejected("incoming cert unknown", .unknownReference, at: "TLS.web.Incoming[0].Cert") {
            $0.set(["TLS", "web", "Incoming"], [["Port": "1", "Cert": "crt", "DisableClientAuth": true]])
        },
        .rejected("incoming cert is a key", .invalidValue, at: "TLS.web.Incoming[0].Cert") {
            $0.set(["TLS", "web", "Incoming"], [["Port": "1", "Cert": "key", "DisableClientAuth": true]])
        },
        .rejected("cert without DisableClientAuth", .conflictingFields, at: "TLS.web.Incoming[0].DisableClientAuth") {
            $0.set(["TLS", "web", "Incoming"], [["Port": "1", "Cert": "cert"]])
        },
        .rejected("DisableClientAuth without cert", .conflictingFields, at: "TLS.web.Incoming[0].DisableClientAuth") {
            $0.set(["TLS", "web", "Incoming"], [["Port": "1", "DisableClientAuth": true]])
        },
        .rejected("recovery key not PEM", .invalidKey, at: "RecoveryKeys.r2") {
            $0.set(["RecoveryKeys", "r2"], "key-of-r2")
        },
        .rejected("recovery key of 1024 bits", .weakKey, at: "RecoveryKeys.r2") {
            $0.set(["RecoveryKeys", "r2"], RuleFixture.keys.weakRecovery)
        },
        .rejected("unknown seal mode", .invalidValue, at: "Config.SealMode") {
            $0.set(["Config", "SealMode"], "Product")
        },
        .accepted("seal mode Disabled") { $0.set(["Config", "SealMode"], "Disabled") },
        .rejected("unknown feature gate", .invalidValue, at: "Config.FeatureGates[1]") {
            $0.set(["Config", "FeatureGates"], ["SignQuoteEndpoint", "MonotonicCounters"])
        },
        .rejected("update threshold above updaters", .threshold, at: "Config.UpdateThreshold") {
            $0.set(["Config", "UpdateThreshold"], 2)
        },
        .accepted("update threshold met by two updaters") {
            $0.set(["Config", "UpdateThreshold"], 2)
            $0.set(["Users", "bob", "Roles"], ["writer", "manifest"])
        },
        .rejected("recovery threshold 1", .threshold, at: "Config.RecoveryThreshold") {
            $0.set(["Config", "RecoveryThreshold"], 1)
        },
        .rejected("recovery threshold above keys", .threshold, at: "Config.RecoveryThreshold") {
            $0.set(["Config", "RecoveryThreshold"], 4)
        },
        .accepted("recovery threshold of all keys") { $0.set(["Config", "RecoveryThreshold"], 3) },
    ]

    static let readingCases: [RuleCase] = [
        .warned("unknown field", .unknownField, at: "Marbles.backend.MaxActivation") {
            $0.set(["Marbles", "backend", "MaxActivation"], 2)
        },
        .rejected("unknown field when strict", .unknownField, at: "Marbles.backend.MaxActivation", strict: true) {
            $0.set(["Marbles", "backend", "MaxActivation"], 2)
        },
        .warned("field in other case", .caseMismatch, at: "Packages.frontend.uniqueid") {
            $0.set(["Packages", "frontend", "UniqueID"], nil)
            $0.set(["Packages", "frontend", "uniqueid"], RuleFixture.hexB)
        },
        .rejected("number as string", .wrongType, at: "Marbles.backend.MaxActivations") {
            $0.set(["Marbles", "backend", "MaxActivations"], "1")
        },
        .rejected("port as number", .wrongType, at: "TLS.web.Outgoing[0].Port") {
            $0.set(["TLS", "web", "Outgoing"], [["Addr": "a", "Port": 8080]])
        },
        .rejected("bool as string", .wrongType, at: "Packages.backend.Debug") {
            $0.set(["Packages", "backend", "Debug"], "false")
        },
        .rejected("negative count", .wrongType, at: "Marbles.backend.MaxActivations") {
            $0.set(["Marbles", "backend", "MaxActivations"], -1)
        },
        .rejected("fractional count", .wrongType, at: "Marbles.backend.MaxActivations") {
            $0.set(["Marbles", "backend", "MaxActivations"], 1.5)
        },
        .rejected("section of the wrong type", .wrongType, at: "Secrets") { $0["Secrets"] = ["a", "b"] },
        .rejected("unknown encoding", .invalidValue, at: "Marbles.backend.Parameters.Env.PLAIN.Encoding") {
            $0.set(["Marbles", "backend", "Parameters", "Env", "PLAIN", "Encoding"], "rot13")
        },
        .rejected("invalid base64 data", .invalidValue, at: "Marbles.backend.Parameters.Env.PLAIN.Data") {
            $0.set(["Marbles", "backend", "Parameters", "Env", "PLAIN", "Data"], "***")
        },
        .rejected("invalid hex data", .invalidValue, at: "Marbles.backend.Parameters.Env.PLAIN.Data") {
            $0.set(["Marbles", "backend", "Parameters", "Env", "PLAIN"], ["Data": "abc", "Encoding": "hex"])
        },
        .rejected("entry of the wrong type", .wrongType, at: "Secrets.key") { $0.set(["Secrets", "key"], 5) },
        .accepted("null means absent") { $0.set(["Marbles", "frontend", "Parameters"], NSNull()) },
    ]

    @Test(arguments: packageCases + marbleCases + secretCases)
    func packagesMarblesSecrets(_ rule: RuleCase) { check(rule) }

    @Test(arguments: userAndRoleCases + tlsRecoveryConfigCases + readingCases)
    func usersRolesTLSConfigReading(_ rule: RuleCase) { check(rule) }

    private func check(_ rule: RuleCase) {
        var object = RuleFixture.base()
        rule.change(&object)
        let document = RuleFixture.parse(object, strict: rule.strict)
        let found = document.problems.map { "\($0.severity.rawValue) \($0.code) \($0.path)" }
        let expected = rule.expected.map { "\($0.severity.rawValue) \($0.code) \($0.path)" }
        if rule.name == "no packages" {
            // Marbles then also name a package that does not exist.
            #expect(found.contains(expected[0]), "\(document.problems)")
        } else {
            #expect(found == expected, "\(document.problems)")
        }
        #expect(document.isValid == !rule.expected.contains { $0.severity == .error })
    }
}
