import Foundation
import FuzzTargets

// The fuzz targets outside libFuzzer: their list, their seed corpora, and a run over given
// files (what scripts/fuzz and the regression tests use).

let usage = """
    usage: marblerun-fuzz-corpus list
           marblerun-fuzz-corpus seeds TARGET DIRECTORY   write TARGET's seed corpus into DIRECTORY
           marblerun-fuzz-corpus run TARGET FILE...       run TARGET once over each file
    Fuzzing itself: scripts/fuzz TARGET (marblerun-fuzz, built with libFuzzer).
    """

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("marblerun-fuzz-corpus: \(message)\n".utf8))
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
