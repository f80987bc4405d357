import ArgumentParser

/// The `marblerun` command: MarbleRun's CLI names, for this Coordinator.
public struct MarblerunCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "marblerun",
        abstract: "Manage a MarbleRun-compatible Coordinator and its manifest.",
        discussion: """
            Command names and flags follow MarbleRun's CLI, so existing scripts keep working. \
            Start with `marblerun manifest check FILE` to validate a manifest before you set it.

            Commands that talk to a Coordinator first verify it: with --era-config FILE they check \
            its quote (with a fresh nonce) against the identity in FILE and pin its root \
            certificate (--coordinator-cert); later calls trust only that root. -i skips this.
            """,
        subcommands: [
            ManifestCommand.self, CertificateCommand.self, SecretCommand.self, StatusCommand.self, RecoverCommand.self,
            RecoverWithSignatureCommand.self, AttestCommand.self, VerifyStatementCommand.self,
            CheckCommand.self, PackageInfoCommand.self, QuoteCommand.self, SimulationCommand.self, VersionCommand.self,
            InstallCommand.self, UninstallCommand.self, PrecheckCommand.self,
        ]
    )

    public init() {}
}

/// `marblerun manifest …`
struct ManifestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "manifest",
        abstract: "Check, set, read, verify and update manifests.",
        subcommands: [
            ManifestCheckCommand.self, ManifestSignatureCommand.self, ManifestSetCommand.self, ManifestGetCommand.self,
            ManifestVerifyCommand.self, ManifestUpdateCommand.self, ManifestLogCommand.self,
        ]
    )
}
