import CoordinatorTesting
import Foundation
import Testing

/// `deploy/gramine/render-manifest` on the Coordinator built here: the manifest is valid TOML
/// (Python's tomllib reads it back), names every shared library `ldd` finds as a trusted file,
/// runs with DCAP attestation and no debug, mounts the seal directory as the only allowed files,
/// and lets the host choose nothing that decides what the Coordinator trusts.
@Suite struct GramineManifestTests {
    static let renderer = TestData.packageRoot.appendingPathComponent("deploy/gramine/render-manifest")
    static let env = URL(fileURLWithPath: "/usr/bin/env")

    static func render(_ arguments: [String]) async throws -> ProcessRunner.Result {
        try await ProcessRunner.run(env, ["python3", renderer.path] + arguments)
    }

    @Test func theRenderedManifestTrustsEveryLibraryAndLetsTheHostChooseNothingItTrusts() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gramine-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let out = directory.appendingPathComponent("coordinator.manifest")
        let binary = CoordinatorProcess.binary.resolvingSymlinksInPath().path
        let rendered = try await Self.render([
            "--binary", binary, "--seal-dir", "/var/lib/marblerun", "--enclave-size", "2G", "--max-threads", "48",
            "--out", out.path,
        ])
        try #require(rendered.status == 0, "\(rendered.stderr)")

        // Read back by a TOML parser we did not write, as JSON.
        let script = """
            import json, sys, tomllib
            print(json.dumps(tomllib.load(open(sys.argv[1], "rb"))))
            """
        let parsed = try await ProcessRunner.run(Self.env, ["python3", "-c", script, out.path])
        try #require(parsed.status == 0, "\(parsed.stderr)")
        let manifest = try #require(
            try JSONSerialization.jsonObject(with: Data(parsed.stdout.utf8)) as? [String: Any])
        let sgx = try #require(manifest["sgx"] as? [String: Any])
        let loader = try #require(manifest["loader"] as? [String: Any])
        #expect(sgx["remote_attestation"] as? String == "dcap")
        #expect(sgx["debug"] as? Bool == false)
        #expect(sgx["file_check_policy"] as? String == "strict")
        #expect(sgx["enclave_size"] as? String == "2G")
        #expect(sgx["max_threads"] as? Int == 48)
        #expect((manifest["libos"] as? [String: Any])?["entrypoint"] as? String == "/coordinator")
        #expect(loader["argv"] as? [String] == ["/coordinator"], "arguments are fixed, not the host's")
        #expect(sgx["allowed_files"] as? [String] == ["file:/var/lib/marblerun/"])

        let trusted = Set(try #require(sgx["trusted_files"] as? [String]))
        #expect(trusted.contains("file:\(binary)"))
        let ldd = try await ProcessRunner.run(Self.env, ["ldd", binary])
        let libraries = ldd.stdout.split(separator: "\n").compactMap { line -> String? in
            let parts = line.split(separator: " ")
            guard let arrow = parts.firstIndex(of: "=>"), arrow + 1 < parts.count else { return nil }
            return String(parts[arrow + 1])
        }
        try #require(libraries.count > 5, "ldd found the Swift runtime: \(ldd.stdout)")
        for library in libraries {
            let name = (library as NSString).lastPathComponent
            if ["libc.so.6", "libm.so.6"].contains(name) {
                #expect(!trusted.contains("file:\(library)"), "\(name) comes from Gramine's runtime, not the host")
            } else {
                #expect(trusted.contains("file:\(library)"), "\(library) is not a trusted file")
            }
        }

        let environment = try #require(loader["env"] as? [String: Any])
        #expect(environment["EDG_COORDINATOR_SEAL_DIR"] as? String == "/data")
        for name in ["EDG_COORDINATOR_SIMULATION", "EDG_COORDINATOR_SGX_ROOT_CA", "EDG_COORDINATOR_GRAMINE_DIR"] {
            #expect(environment[name] == nil, "\(name) must not be the host's to set")
        }
        #expect((environment["EDG_STORE_URL"] as? [String: Any])?["passthrough"] as? Bool == true)
    }

    @Test func badInputIsRefusedWithWhatToFix() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gramine-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let binary = CoordinatorProcess.binary.path
        let notExecutable = directory.appendingPathComponent("not-a-program")
        try Data("x".utf8).write(to: notExecutable)
        let template = directory.appendingPathComponent("template")
        try Data("libos.entrypoint = {{ entrypoint }}\nsgx.unknown = {{ something_new }}\n".utf8).write(to: template)
        let broken = directory.appendingPathComponent("broken")
        try Data("libos.entrypoint = {{ entrypoint }} oops\n".utf8).write(to: broken)
        let cases: [([String], String)] = [
            (["--binary", notExecutable.path, "--seal-dir", "/d"], "not an executable"),
            (["--binary", binary, "--seal-dir", "/d", "--enclave-size", "lots"], "--enclave-size"),
            (["--binary", binary, "--seal-dir", "/d", "--max-threads", "0"], "--max-threads"),
            (["--binary", binary, "--seal-dir", "/d", "--template", template.path], "something_new"),
            (["--binary", binary, "--seal-dir", "/d", "--template", broken.path], "not valid TOML"),
            (["--binary", "/bin/sh-that-does-not-exist", "--seal-dir", "/d"], "not an executable"),
        ]
        for (arguments, reason) in cases {
            let result = try await Self.render(arguments)
            #expect(result.status != 0 && result.stderr.contains(reason), "\(arguments): \(result.stderr)")
        }
    }
}
