import ArgumentParser

/// The `marblerun` command: MarbleRun's CLI names, for this Coordinator.
public struct MarblerunCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "marblerun",
        abstract: "Manage a MarbleRun-compatible Coordinator and its manifest.",
        discussion: """
            Command names and flags follow MarbleRun's CLI, so existing scripts keep working. \
            Start with `marblerun manifest check FILE` to validate a manifest before you set it.
            """,
        subcommands: [ManifestCommand.self, QuoteCommand.self, SimulationCommand.self, PackageInfoCommand.self]
    )

    public init() {}
}

/// `marblerun manifest …`
struct ManifestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "manifest",
        abstract: "Check and inspect manifests.",
        subcommands: [ManifestCheckCommand.self, ManifestSignatureCommand.self]
    )
}
