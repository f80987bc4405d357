import Foundation

/// The shared, externally made test artefacts (`../shared/testdata` beside the checkout).
public enum TestData {
    /// `MARBLERUN_TESTDATA`, or `../shared/testdata` relative to the package root.
    public static let directory: URL = {
        if let override = ProcessInfo.processInfo.environment["MARBLERUN_TESTDATA"], !override.isEmpty {
            return URL(fileURLWithPath: override)
        }
        return packageRoot.deletingLastPathComponent().appendingPathComponent("shared/testdata")
    }()

    /// The Python of the test virtualenv (dcap-qvl, grpcio) that `scripts/test` creates;
    /// `DCAP_QVL_PYTHON` overrides it.
    public static var python: URL {
        if let path = ProcessInfo.processInfo.environment["DCAP_QVL_PYTHON"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        return packageRoot.appendingPathComponent(".venv/bin/python")
    }

    /// MarbleRun's own activation proto, kept beside the test data.
    public static var marblerunProto: URL {
        directory.deletingLastPathComponent().appendingPathComponent("reference/marblerun-coordinator.proto")
    }

    /// The root of this package, found from this source file's location.
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // CoordinatorTesting
        .deletingLastPathComponent()  // Sources
        .deletingLastPathComponent()

    /// An executable of this package built beside the test bundle (`coordinator`, `marble-injector`, …).
    public static func product(_ name: String) -> URL {
        let products = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidate = products.appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        return packageRoot.appendingPathComponent(".build/debug/\(name)")
    }

    public static func url(_ relativePath: String) -> URL {
        directory.appendingPathComponent(relativePath)
    }

    public static func bytes(_ relativePath: String) throws -> [UInt8] {
        Array(try Data(contentsOf: url(relativePath)))
    }

    public static func text(_ relativePath: String) throws -> String {
        String(decoding: try bytes(relativePath), as: UTF8.self)
    }

    /// MarbleRun's sample manifests.
    public static let manifestNames = [
        "sample-manifest.json", "helloworld.json", "gramine-nginx.json", "occlum-hello.json",
    ]
}
