import Foundation

/// Writes straight into a state database's file, as the host (who owns the file) can, without
/// the store's version bookkeeping.
public enum SQLiteFile {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Sets the row `key` to `value` at `version` (Python's sqlite3 module, another process).
    public static func overwrite(_ database: String, key: String, value: [UInt8], version: Int64) async throws {
        let script = """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            db.execute("UPDATE kv SET value = ?, version = ? WHERE key = ?", (bytes.fromhex(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
            db.commit()
            assert db.total_changes == 1, "no row " + sys.argv[4]
            """
        let hex = value.map { String(format: "%02x", $0) }.joined()
        let result = try await ProcessRunner.run(
            URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", script, database, hex, String(version), key])
        guard result.status == 0 else { throw Failure(description: "rewriting \(key) failed: \(result.stderr)") }
    }
}
