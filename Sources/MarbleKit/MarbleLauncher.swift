import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Turns activation parameters into the program's world: files written (0600, parent
/// directories created), environment set, argv replaced, then `execve` so that the program
/// itself becomes this process (the PID stays).
public enum MarbleLauncher {
    /// Writes every file of `parameters`; paths are taken as the manifest gives them.
    public static func writeFiles(_ parameters: MarbleParameters) throws(MarbleError) {
        let manager = FileManager.default
        for (path, contents) in parameters.files.sorted(by: { $0.key < $1.key }) {
            let url = URL(fileURLWithPath: path)
            do {
                try manager.createDirectory(
                    at: url.deletingLastPathComponent(), withIntermediateDirectories: true,
                    attributes: [.posixPermissions: 0o700])
            } catch {
                throw MarbleError(
                    .configuration, "cannot create the directory of \(path): \(error.localizedDescription)")
            }
            // Replace, never append to or follow an existing file's mode.
            try? manager.removeItem(at: url)
            guard manager.createFile(atPath: path, contents: Data(contents), attributes: [.posixPermissions: 0o600])
            else { throw MarbleError(.configuration, "cannot write \(path)") }
        }
    }

    /// The program's environment: this process's, with the parameters' variables set.
    public static func environment(_ parameters: MarbleParameters, base: [String: String]) -> [String: String] {
        var environment = base
        for (name, value) in parameters.env { environment[name] = String(decoding: value, as: UTF8.self) }
        return environment
    }

    /// The program's arguments: the manifest's Argv when it gives one, else the command line's.
    public static func arguments(_ parameters: MarbleParameters, default commandLine: [String]) -> [String] {
        parameters.argv.isEmpty ? commandLine : parameters.argv
    }

    /// Replaces this process with `program`; returns only by throwing when that fails.
    public static func exec(_ program: String, arguments: [String], environment: [String: String]) throws(MarbleError)
        -> Never
    {
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        execve(program, &argv, &envp)
        let reason = String(cString: strerror(errno))
        argv.forEach { free($0) }
        envp.forEach { free($0) }
        throw MarbleError(.configuration, "cannot start \(program): \(reason)")
    }

    /// `name` as given when it has a slash, else the first executable of that name on `PATH`.
    public static func resolve(_ name: String, path: String?) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        for directory in (path ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
