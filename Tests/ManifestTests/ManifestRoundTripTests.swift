import CoordinatorTesting
import Foundation
import Manifest
import Testing

@Suite struct ManifestRoundTripTests {
    @Test func jsonOutReadsBackToTheSameManifest() throws {
        for bytes in [try SampleManifests.sampleWithCertificates(), RuleFixture.bytes(RuleFixture.base())] {
            let first = ManifestDocument.parse(bytes)
            let manifest = try #require(first.manifest)
            let again = ManifestDocument.parse(manifest.jsonValue.serialized())
            #expect(again.manifest == manifest)
            #expect(again.errors == first.errors)
        }
    }

    @Test func aTDXPackageReadsBackWithEveryMeasurement() throws {
        let hex48 = { (byte: String) in String(repeating: byte, count: 48) }
        let text = """
            {"Packages": {"td": {"MRTD": "\(hex48("ab"))", "RTMR0": "\(hex48("01"))", "RTMR3": "\(hex48("03"))",
              "MRSEAM": "\(hex48("0f"))", "TDAttributes": "0000000000000000", "XFAM": "e702060000000000", "Debug": false}},
             "Marbles": {"vm": {"Package": "td"}}}
            """
        let first = ManifestDocument.parse(Array(text.utf8))
        #expect(first.errors.isEmpty, "\(first.errors)")
        let manifest = try #require(first.manifest)
        let package = try #require(manifest.packages["td"])
        #expect(
            package.isTDX && package.tdx.mrTD == hex48("ab") && package.tdx.rtmrs == [0: hex48("01"), 3: hex48("03")])
        #expect(package.tdx.mrSeam == hex48("0f") && package.tdx.xfam == "e702060000000000")
        let again = ManifestDocument.parse(manifest.jsonValue.serialized())
        #expect(again.manifest == manifest)
    }

    @Test func sampleManifestModelHasEveryField() throws {
        let manifest = try #require(ManifestDocument.parse(try SampleManifests.sampleWithCertificates()).manifest)
        let backend = try #require(manifest.packages["backend"])
        #expect(backend.signerID == "1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100")
        #expect(backend.productID == 45 && backend.securityVersion == 2 && !backend.debug)
        let first = try #require(manifest.marbles["backendFirst"])
        #expect(first.maxActivations == 1 && first.tls == ["web"])
        #expect(first.parameters.argv == ["./backend", "--first", "serve"])
        #expect(
            first.parameters.files["/tmp/jkl.mno"]
                == Manifest.ParameterValue(data: Array("bar".utf8), encoding: .base64, noTemplates: true))
        #expect(first.parameters.env["IS_SECOND"]?.data == Array("false".utf8))
        #expect(manifest.secrets["certPrivate"]?.cert?.subject?.commonName == "MarbleRun Unit Test")
        #expect(manifest.secrets["certPrivate"]?.validFor == 7)
        #expect(manifest.roles["secrets-admin"]?.actions == ["ReadSecret", "WriteSecret"])
        #expect(manifest.tls["anotherWeb"]?.incoming.first?.cert == "rsaShared")
        #expect(manifest.tls["anotherWeb"]?.incoming.first?.disableClientAuth == true)
    }

    @Test func yamlGivesTheSameManifestAndJSONAsMarbleRunsConversion() throws {
        let yaml = """
            # comment
            Packages:
              web: &pkg
                UniqueID: "\(String(repeating: "ab", count: 32))"
                Debug: false
            Marbles:
              web:
                Package: web
                MaxActivations: 0x10
                Parameters:
                  Env:
                    QUOTED: "true"
                    MULTI: |
                      line one
                      line two

            """
        let document = ManifestDocument.parse(Array(yaml.utf8))
        #expect(document.format == .yaml)
        #expect(document.problems == [])
        #expect(document.manifest?.marbles["web"]?.maxActivations == 16)
        #expect(document.manifest?.marbles["web"]?.parameters.env["QUOTED"]?.data == Array("true".utf8))
        let json = String(decoding: document.jsonBytes, as: UTF8.self)
        #expect(
            json.hasPrefix(
                #"{"Marbles":{"web":{"MaxActivations":16,"Package":"web","Parameters":{"Env":{"MULTI":"line one\nline two\n","QUOTED":"true"}}}}"#
            ))
    }

    /// A plain scalar is a number only when YAML's resolver says so: a URL with a port or a
    /// dotted version stays a string. (A URL was read as its port number before.)
    @Test func yamlPlainScalarsThatAreNotNumbersStayStrings() throws {
        let yaml = """
            Packages:
              web:
                UniqueID: "\(String(repeating: "ab", count: 32))"
            Marbles:
              web:
                Package: web
                Parameters:
                  Env:
                    URL: https://db.example:5432
                    VERSION: 1.2.3
                    HOSTPORT: db:5432

            """
        let document = ManifestDocument.parse(Array(yaml.utf8))
        #expect(document.problems == [])
        let env = try #require(document.manifest?.marbles["web"]?.parameters.env)
        #expect(env["URL"]?.data == Array("https://db.example:5432".utf8))
        #expect(env["VERSION"]?.data == Array("1.2.3".utf8))
        #expect(env["HOSTPORT"]?.data == Array("db:5432".utf8))
    }

    @Test func yamlAliasBombIsRefused() {
        var yaml = "a: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n"
        for level in 1...9 {
            yaml +=
                "l\(level): &l\(level) ["
                + Array(repeating: level == 1 ? "*a" : "*l\(level - 1)", count: 9).joined(separator: ",") + "]\n"
        }
        let document = ManifestDocument.parse(Array(yaml.utf8))
        #expect(document.manifest == nil)
        #expect(document.errors.first?.message.contains("more than 200000 nodes") == true)
    }

    @Test func yamlSyntaxErrorHasAPosition() {
        let document = ManifestDocument.parse(Array("Packages:\n  a: [1, 2\n".utf8))
        #expect(document.errors.first?.code == .syntax)
        #expect(document.errors.first?.message.contains("line") == true)
    }

    @Test func topLevelMustBeAnObject() {
        #expect(ManifestDocument.parse(Array("[1]".utf8)).errors.first?.code == .wrongType)
        #expect(ManifestDocument.parse(Array("just text".utf8)).errors.first?.code == .wrongType)
    }
}

@Suite struct ManifestCodableTests {
    @Test func foundationCodersRoundTripTheModel() throws {
        let manifest = try #require(ManifestDocument.parse(RuleFixture.bytes(RuleFixture.base())).manifest)
        let data = try JSONEncoder().encode(manifest)
        #expect(try JSONDecoder().decode(Manifest.self, from: data) == manifest)
    }

    @Test func decodingReportsReadingErrors() {
        let data = Data(#"{"Marbles": {"m": {"MaxActivations": "many"}}}"#.utf8)
        #expect {
            _ = try JSONDecoder().decode(Manifest.self, from: data)
        } throws: { error in
            guard case DecodingError.dataCorrupted(let context) = error else { return false }
            return context.debugDescription.contains("Marbles.m.MaxActivations")
        }
    }
}
