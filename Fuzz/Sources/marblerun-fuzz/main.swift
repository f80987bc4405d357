import Foundation
import FuzzTargets

// Built with `--sanitize=fuzzer` (scripts/fuzz), libFuzzer's own main calls these two and the
// top-level code below never runs. In an ordinary build this file is a small tool: the list of
// targets, their seed corpora, and a run over given files (what the regression tests do).

@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>
) -> CInt {
    _ = FuzzTargets.selected
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    _ = FuzzTargets.selected.run(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}

let usage = """
    usage: marblerun-fuzz list
           marblerun-fuzz seeds TARGET DIRECTORY   write TARGET's seed corpus into DIRECTORY
           marblerun-fuzz run TARGET FILE...       run TARGET once over each file
    Fuzzing itself: scripts/fuzz TARGET (a libFuzzer build of this program).
    """

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("marblerun-fuzz: \(message)\n".utf8))
    exit(2)
}

func target(_ name: String) -> any FuzzHarness.Type {
    guard let type = FuzzTargets.named(name) else {
        fail("no target \(name); the targets are \(FuzzTargets.all.map { $0.name }.joined(separator: ", "))")
    }
    return type
}

let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case "list":
    for type in FuzzTargets.all { print("\(type.name)\t\(type.surface)") }
case "seeds" where arguments.count == 3:
    let type = target(arguments[1])
    let directory = URL(fileURLWithPath: arguments[2])
    do {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let seeds = try type.seeds()
        for seed in seeds {
            try Data(seed.bytes).write(to: directory.appendingPathComponent(FuzzTargets.fileName(for: seed.bytes)))
        }
        print("\(type.name): \(seeds.count) seeds in \(directory.path)")
    } catch {
        fail("writing the seeds of \(type.name): \(error)")
    }
case "run" where arguments.count >= 3:
    let type = target(arguments[1])
    let harness: any FuzzHarness
    do { harness = try type.init() } catch { fail("setting up \(type.name): \(error)") }
    var accepted = 0
    for path in arguments.dropFirst(2) {
        guard let data = FileManager.default.contents(atPath: path) else { fail("cannot read \(path)") }
        if harness.run(Array(data)) { accepted += 1 }
    }
    print("\(type.name): \(arguments.count - 2) inputs ran, \(accepted) passed every check")
default:
    fail(usage)
}
