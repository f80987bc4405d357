import Foundation
import Testing

@testable import CoordinatorCore

/// The sealed data key record and the SGX sealer on Gramine's key files: each mode uses its own
/// key, another key opens nothing, and malformed records and key files are clear errors.
@Suite struct SealerTests {
    static func keys(signer: UInt8, enclave: UInt8, signerLength: Int = 16) throws -> GramineSealer {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keys-\(UUID().uuidString)")
        let keys = directory.appendingPathComponent("keys")
        try FileManager.default.createDirectory(at: keys, withIntermediateDirectories: true)
        try Data(repeating: signer, count: signerLength).write(to: keys.appendingPathComponent("_sgx_mrsigner"))
        try Data(repeating: enclave, count: 16).write(to: keys.appendingPathComponent("_sgx_mrenclave"))
        return GramineSealer(directory: directory)
    }

    @Test func eachModeSealsWithItsOwnKey() async throws {
        let dataKey = [UInt8](repeating: 0x42, count: 32)
        let sealer = try Self.keys(signer: 1, enclave: 2)
        for mode in [SealMode.productKey, .uniqueKey] {
            let record = try SealedKeyRecord.seal(dataKey, mode: mode, with: sealer)
            #expect(try SealedKeyRecord.decode(record).mode == mode)
            #expect(try SealedKeyRecord.unseal(record, with: sealer) == dataKey)
            #expect(!record.containsRun(dataKey), "the record holds no plaintext key")
        }
        // The other signer's product key, the other enclave's unique key: nothing opens.
        let product = try SealedKeyRecord.seal(dataKey, mode: .productKey, with: sealer)
        let unique = try SealedKeyRecord.seal(dataKey, mode: .uniqueKey, with: sealer)
        await expectCode(.sealedState, saying: "MRSIGNER") {
            _ = try SealedKeyRecord.unseal(product, with: try Self.keys(signer: 9, enclave: 2))
        }
        await expectCode(.sealedState, saying: "MRENCLAVE") {
            _ = try SealedKeyRecord.unseal(unique, with: try Self.keys(signer: 1, enclave: 9))
        }
        // Same hardware keys, the mode byte changed: the other key-encryption key fails too.
        var swapped = product
        swapped[1] = 2
        await expectCode(.sealedState) { _ = try SealedKeyRecord.unseal(swapped, with: sealer) }
    }

    @Test func malformedRecordsAndKeyFilesAreClearErrors() async throws {
        let sealer = try Self.keys(signer: 1, enclave: 2)
        for bytes: [UInt8] in [
            [], [1], [2, 1, 0], [1, 9, 0], [1, 3, 0], [0xFF, 1] + [UInt8](repeating: 0, count: 40),
        ] {
            await expectCode(.sealedState) { _ = try SealedKeyRecord.unseal(bytes, with: sealer) }
        }
        // Disabled keeps no key: there is nothing to unseal, and the message says why.
        await expectCode(.sealedState, saying: "SealMode Disabled") {
            _ = try SealedKeyRecord.unseal([1, 3], with: sealer)
        }
        await expectCode(.sealedState, saying: "has 15 bytes, not 16") {
            _ = try SealedKeyRecord.seal(
                [UInt8](repeating: 0, count: 32), mode: .productKey,
                with: try Self.keys(signer: 1, enclave: 2, signerLength: 15))
        }
        await expectCode(.sealedState, saying: "is this a Gramine enclave?") {
            _ = try GramineSealer(directory: URL(fileURLWithPath: "/nonexistent")).seal([1], mode: .uniqueKey)
        }
    }
}

extension Array where Element == UInt8 {
    func containsRun(_ run: [UInt8]) -> Bool {
        guard run.count <= count else { return false }
        return (0...(count - run.count)).contains { Array(self[$0..<($0 + run.count)]) == run }
    }
}
