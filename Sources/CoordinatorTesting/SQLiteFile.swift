import Foundation

/// Writes straight into a state database's file, as the host (who owns the file) can, without
/// the store's version bookkeeping.
public enum SQLiteFile {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Sets the row `key` to `value` at `version` (Python's sqlite3 module, another process).
    public static func overwrite(_ database: String, key: String, value: [UInt8], version: Int64) async throws {
        let hex = value.map { String(format: "%02x", $0) }.joined()
        try await change(
            database, key: key,
            statement: "UPDATE kv SET value = ?, version = ? WHERE key = ?",
            parameters: "(bytes.fromhex(sys.argv[3]), int(sys.argv[4]), sys.argv[2])",
            arguments: [hex, String(version)])
    }

    /// Deletes the row `key`.
    public static func delete(_ database: String, key: String) async throws {
        try await change(
            database, key: key, statement: "DELETE FROM kv WHERE key = ?", parameters: "(sys.argv[2],)", arguments: [])
    }

    private static func change(
        _ database: String, key: String, statement: String, parameters: String, arguments: [String]
    ) async throws {
        let script = """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            db.execute("\(statement)", \(parameters))
            db.commit()
            assert db.total_changes == 1, "no row " + sys.argv[2]
            """
        let result = try await ProcessRunner.run(
            URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", script, database, key] + arguments)
        guard result.status == 0 else { throw Failure(description: "changing \(key) failed: \(result.stderr)") }
    }
}
