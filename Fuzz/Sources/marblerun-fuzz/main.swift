import FuzzTargets

// libFuzzer's entry points; built with `--sanitize=fuzzer` (scripts/fuzz), libFuzzer's own main
// calls them. SwiftPM builds this file as a library then, so it holds no top-level code, and an
// ordinary build of it does nothing: `marblerun-fuzz-corpus` lists targets, writes seeds, replays.

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
