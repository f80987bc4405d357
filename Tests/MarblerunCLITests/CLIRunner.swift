import Foundation
import CoordinatorTesting

/// Runs the real `marblerun` binary built next to the tests.
struct CLIRunner {
    typealias Result = ProcessRunner.Result

    static let binary = TestData.product("marblerun")

    static func run(_ arguments: [String], executable: URL = binary) async throws -> Result {
        try await ProcessRunner.run(executable, arguments)
    }

    /// Writes bytes to a fresh temporary file and returns its path.
    static func temporaryFile(_ bytes: [UInt8], name: String) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "marblerun-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let url = directory.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }
}
