import AttestationPCCS
import Foundation
import Testing

/// `/etc/sgx_default_qcnl.conf` as Intel ships and deployments edit it: JSON with comments and
/// trailing commas; anything that names no usable service is a clear error.
@Suite struct QCNLConfigurationTests {
    func parse(_ text: String) throws -> QCNLConfiguration {
        try QCNLConfiguration.parse(Array(text.utf8), source: "test.conf")
    }

    @Test func intelsSampleLayoutParses() throws {
        let text = """
            {
              // *** ATTENTION : This file is in JSON format so the keys are case sensitive. Don't change them.

              //PCCS server address
              "pccs_url": "https://localhost:8081/sgx/certification/v4/"

              // To accept insecure HTTPS certificate, set this option to false
              ,"use_secure_cert": false

              /* You can use the Intel PCS or another PCCS to get quote verification collateral.
                 "collateral_service": "https://commented.out/" */
              ,"retry_times": 6
              ,"retry_delay": 10,
              "pck_cache_expire_hours": 168,
            }
            """
        #expect(
            try parse(text)
                == QCNLConfiguration(
                    collateralURL: "https://localhost:8081/sgx/certification/v4/", useSecureCert: false))
    }

    @Test func collateralServiceWinsOverPCCSURLAndSecureIsTheDefault() throws {
        let configuration = try parse(
            #"{"pccs_url": "https://pccs:8081/", "collateral_service": "https://api.trustedservices.intel.com/sgx/certification/v4/"}"#
        )
        #expect(configuration.collateralURL == "https://api.trustedservices.intel.com/sgx/certification/v4/")
        #expect(configuration.useSecureCert)
        #expect(configuration.isIntelPCS)
        // Slashes inside strings are not comments; an escaped quote does not end the string.
        #expect(
            try parse(#"{"pccs_url": "https://pccs//x/*y*/", "note": "a \"//\" b",}"#).collateralURL
                == "https://pccs//x/*y*/")
    }

    @Test(arguments: [
        ("", "not valid JSON"),
        ("[]", "one JSON object"),
        ("{}", "names no collateral service"),
        (#"{"pccs_url": ""}"#, "names no collateral service"),
        (#"{"pccs_url": 8081}"#, "must be a string"),
        (#"{"pccs_url": "ftp://pccs/"}"#, "not an http(s) URL"),
        (#"{"pccs_url": "https://"}"#, "not an http(s) URL"),
        (#"{"pccs_url": "https://pccs/?a=b"}"#, "not an http(s) URL"),
        (#"{"pccs_url": "https://pccs/", "use_secure_cert": "FALSE"}"#, "must be true or false"),
        (#"{"pccs_url": "https://pccs/""#, "not valid JSON"),
    ])
    func badFilesSayWhatIsWrong(text: String, reason: String) {
        #expect {
            _ = try parse(text)
        } throws: { error in
            let message = (error as? QCNLConfigurationError)?.message ?? ""
            return message.contains(reason) && message.contains("test.conf")
        }
    }

    @Test func hostileSizesAndDepthsAreRefused() {
        let huge = #"{"pccs_url": "https://pccs/", "x": ""# + String(repeating: "a", count: 70_000) + "\"}"
        #expect(throws: QCNLConfigurationError.self) { _ = try parse(huge) }
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: QCNLConfigurationError.self) { _ = try parse(#"{"a": \#(deep)}"#) }
        #expect(throws: QCNLConfigurationError.self) { _ = try parse(String(repeating: "/", count: 1000)) }
    }

    @Test func flagsAndFilesResolveAsDocumented() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qcnl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent("qcnl.conf")
        try Data(#"{"pccs_url": "https://pccs.local:8081/", "use_secure_cert": false}"#.utf8).write(to: file)

        // Simulation without flags: nothing (the simulated platform's collateral).
        #expect(try QCNLConfiguration.resolve(url: nil, path: nil, defaults: false) == nil)
        #expect(
            try QCNLConfiguration.resolve(url: nil, path: file.path, defaults: false)
                == QCNLConfiguration(collateralURL: "https://pccs.local:8081/", useSecureCert: false))
        // A URL flag replaces the file's URL and keeps its certificate setting.
        #expect(
            try QCNLConfiguration.resolve(url: "https://other:9000", path: file.path, defaults: true)
                == QCNLConfiguration(collateralURL: "https://other:9000", useSecureCert: false))
        #expect(
            try QCNLConfiguration.resolve(url: "https://other:9000", path: nil, defaults: false)
                == QCNLConfiguration(collateralURL: "https://other:9000", useSecureCert: true))
        #expect(throws: QCNLConfigurationError.self) {
            _ = try QCNLConfiguration.resolve(url: "not a url", path: nil, defaults: false)
        }
        #expect {
            _ = try QCNLConfiguration.resolve(
                url: nil, path: directory.appendingPathComponent("absent").path, defaults: true)
        } throws: { ($0 as? QCNLConfigurationError)?.message.contains("does not exist") == true }
    }
}
