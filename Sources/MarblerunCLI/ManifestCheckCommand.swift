import ArgumentParser
import Foundation
import Manifest

/// `marblerun manifest check FILE [--strict] [--json]`
struct ManifestCheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate a manifest (JSON or YAML) without a Coordinator.",
        discussion: """
            Prints every error and warning with its JSON path, then a summary line. \
            Exits 0 when the manifest has no error (warnings allowed), 1 otherwise.

            Unknown fields are warnings, because MarbleRun silently ignores them; --strict makes \
            them errors. Templates are rendered once with stand-in secrets, as a Coordinator does \
            before it accepts a manifest.
            """
    )

    @Argument(help: "The manifest file (JSON or YAML).")
    var file: String

    @Flag(help: "Treat unknown fields as errors.")
    var strict = false

    @Flag(help: "Print the result as JSON for scripts.")
    var json = false

    func run() async throws {
        let options = ManifestOptions(strict: strict)
        let bytes: [UInt8]
        do {
            bytes = try ManifestFile.read(file, limit: options.maximumSize)
        } catch {
            if json {
                print(ManifestCheckReport.json(file: file, readError: error.description))
            } else {
                printError("error: \(error.description)")
            }
            throw ExitCode(1)
        }
        let document = ManifestDocument.parse(bytes, options: options)
        if json {
            print(ManifestCheckReport.json(file: file, document: document))
        } else {
            print(ManifestCheckReport.text(file: file, document: document), terminator: "")
        }
        if !document.isValid { throw ExitCode(1) }
    }
}

/// `marblerun manifest signature FILE`
struct ManifestSignatureCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "signature",
        abstract: "Print the manifest's fingerprint: the hex SHA-256 a Coordinator reports for it.",
        discussion: """
            For JSON the hash covers the file's exact bytes; a YAML manifest is first converted to \
            the JSON that `manifest set` would send. The manifest is not validated: use `check`.
            """
    )

    @Argument(help: "The manifest file (JSON or YAML).")
    var file: String

    func run() async throws {
        let options = ManifestOptions()
        do {
            let document = ManifestDocument.parse(
                try ManifestFile.read(file, limit: options.maximumSize), options: options)
            guard !document.jsonBytes.isEmpty else {
                printError("error: \(file): \(document.errors.first?.message ?? "unreadable")")
                throw ExitCode(1)
            }
            print(document.fingerprint)
        } catch let error as ManifestFile.ReadError {
            printError("error: \(error.description)")
            throw ExitCode(1)
        }
    }
}

func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
