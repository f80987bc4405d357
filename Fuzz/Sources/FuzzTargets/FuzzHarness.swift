import Crypto
import Dispatch
import Foundation
import Synchronization

/// One input surface under the fuzzer: whatever it is set up with once, then one call per
/// input. An input may be refused with an error (that is the point); a crash, a trap, a hang or a
/// broken invariant (a `precondition` here) is a finding.
public protocol FuzzHarness: Sendable {
    /// The name scripts/fuzz and `MARBLERUN_FUZZ_TARGET` use.
    static var name: String { get }
    /// What the target reads, for `marblerun-fuzz-corpus list`.
    static var surface: String { get }
    /// Inputs to start from: real artefacts from `../shared/testdata` and the tests' vectors.
    static func seeds() throws -> [(name: String, bytes: [UInt8])]
    init() throws
    /// Runs one input; true when it passed every check (the tests use that to see that the
    /// seeds reach the end of the path, libFuzzer ignores it).
    @discardableResult func run(_ input: [UInt8]) -> Bool
}

/// Every target, by name.
public enum FuzzTargets {
    public static let all: [any FuzzHarness.Type] = [
        QuoteHarness.self, TCBInfoHarness.self, QEIdentityHarness.self, CRLHarness.self, CollateralHarness.self,
        CertificateHarness.self, SigstructHarness.self, ManifestHarness.self, TemplateHarness.self,
        JSONHarness.self, ClientBodyHarness.self, CSRHarness.self, ActivationHarness.self, AuditLogHarness.self,
    ]

    public static func named(_ name: String) -> (any FuzzHarness.Type)? {
        all.first { $0.name == name }
    }

    /// The target libFuzzer drives: `MARBLERUN_FUZZ_TARGET`, set up on first use.
    public static let selected: any FuzzHarness = {
        let name = ProcessInfo.processInfo.environment["MARBLERUN_FUZZ_TARGET"] ?? ""
        guard let type = named(name) else {
            FileHandle.standardError.write(
                Data(
                    "marblerun-fuzz: set MARBLERUN_FUZZ_TARGET to one of \(all.map { $0.name }.joined(separator: ", "))\n"
                        .utf8))
            exit(2)
        }
        do {
            return try type.init()
        } catch {
            FileHandle.standardError.write(Data("marblerun-fuzz: setting up \(name) failed: \(error)\n".utf8))
            exit(2)
        }
    }()
}

/// Waits for async work from a synchronous caller. Only for the fuzz driver: libFuzzer calls a
/// target on its own thread, never on one of Swift's cooperative threads, so blocking it here
/// starves nothing.
func runBlocking<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
    let result = Mutex<T?>(nil)
    let done = DispatchSemaphore(value: 0)
    Task {
        let value = await body()
        result.withLock { $0 = value }
        done.signal()
    }
    done.wait()
    return result.withLock { $0! }
}

/// A fixed P-256 key, so that seeds signed with it stay valid in every run.
func fixedKeyBytes(_ label: String) -> [UInt8] {
    Array(SHA256.hash(data: Array("marblerun-fuzz \(label)".utf8)))
}

/// A target could not be set up: its seed data is missing or does not parse.
struct FuzzSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension FuzzTargets {
    /// libFuzzer's name for an input: the SHA-1 of its bytes, so a seed written twice is one file.
    public static func fileName(for bytes: [UInt8]) -> String {
        Insecure.SHA1.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }
}
