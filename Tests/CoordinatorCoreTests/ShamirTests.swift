import Foundation
import CoordinatorTesting
import Testing

@testable import CoordinatorCore

@Suite struct ShamirTests {
    /// FIPS-197 §4.2 and §4.2.1 ({57}·{83} = {c1}, the xtime chain of {57}) and the field
    /// tests of HashiCorp Vault's shamir package.
    @Test func fieldArithmeticMatchesPublishedValues() {
        #expect(Shamir.multiply(0x57, 0x83) == 0xC1)
        #expect(Shamir.multiply(0x57, 0x13) == 0xFE)
        #expect([0x02, 0x04, 0x08, 0x10].map { Shamir.multiply(0x57, $0) } == [0xAE, 0x47, 0x8E, 0x07])
        #expect(Shamir.multiply(3, 7) == 9 && Shamir.multiply(3, 0) == 0 && Shamir.multiply(0, 3) == 0)
        #expect(Shamir.divide(0, 7) == 0 && Shamir.divide(3, 3) == 1 && Shamir.divide(6, 3) == 2)
        for a in 1...255 {
            let a = UInt8(a)
            #expect(Shamir.multiply(a, Shamir.divide(1, a)) == 1, "inverse of \(a)")
        }
    }

    /// Every 3 of 5 shares give the secret back; 2 do not.
    @Test func anyThresholdOfSharesRecoversTheSecret() throws {
        let secret = Array((0..<32).map { UInt8($0 * 7 + 1) })
        let shares = try Shamir.split(secret, count: 5, threshold: 3)
        #expect(shares.count == 5 && shares.allSatisfy { $0.count == 33 })
        #expect(shares.map { $0[32] } == [1, 2, 3, 4, 5])
        for i in 0..<5 {
            for j in 0..<5 where j != i {
                for k in 0..<5 where k != i && k != j {
                    #expect(try Shamir.combine([shares[i], shares[j], shares[k]]) == secret)
                }
                #expect(try Shamir.combine([shares[i], shares[j]]) != secret)
            }
        }
        #expect(try Shamir.combine(shares) == secret, "more shares than needed also work")
    }

    @Test func aChangedShareGivesAnotherSecret() throws {
        let secret = [UInt8](repeating: 0xAB, count: 32)
        var shares = try Shamir.split(secret, count: 3, threshold: 2)
        shares[1][5] ^= 1
        #expect(try Shamir.combine([shares[0], shares[1]]) != secret)
    }

    @Test func badParametersAndSharesAreRefused() throws {
        let secret: [UInt8] = [1, 2, 3]
        for (count, threshold) in [(0, 0), (2, 3), (1000, 3), (10, 1), (256, 2)] {
            #expect(throws: Shamir.Failure.self) { try Shamir.split(secret, count: count, threshold: threshold) }
        }
        #expect(throws: Shamir.Failure.self) { try Shamir.split([], count: 3, threshold: 2) }
        #expect(throws: Shamir.Failure.self) { try Shamir.combine([]) }
        #expect(throws: Shamir.Failure.self) { try Shamir.combine([[1, 2]]) }
        #expect(throws: Shamir.Failure.self) { try Shamir.combine([[1, 2, 1], [1, 2]]) }
        #expect(throws: Shamir.Failure.self) { try Shamir.combine([[1], [2]]) }
        #expect(throws: Shamir.Failure.self) { try Shamir.combine([[1, 2, 1], [3, 4, 1]]) }
        #expect(throws: Shamir.Failure.self) { try Shamir.combine([[1, 2, 0], [3, 4, 1]]) }
    }

    /// An implementation we did not write — SLIP-39's GF(256) interpolation (the same field) —
    /// gets every secret back from our shares.
    @Test func slip39InterpolationAgreesWithOurShares() async throws {
        var random = SeededRandom(state: 2026)
        var cases: [[[Any]]] = []
        var secrets: [String] = []
        for round in 0..<40 {
            let secret = (0..<(1 + round % 33)).map { _ in UInt8.random(in: 0...255, using: &random) }
            let count = 2 + round % 6
            let threshold = 2 + round % (count - 1)
            let shares = try Shamir.split(secret, count: count, threshold: threshold) { length in
                (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            }
            let chosen = shares.shuffled(using: &random).prefix(threshold)
            cases.append(
                chosen.map { [Int($0.last!), Data($0.dropLast()).map { String(format: "%02x", $0) }.joined()] })
            secrets.append(secret.map { String(format: "%02x", $0) }.joined())
        }
        let input = FileManager.default.temporaryDirectory.appendingPathComponent("shamir-\(UUID().uuidString).json")
        try JSONSerialization.data(withJSONObject: ["cases": cases]).write(to: input)
        defer { try? FileManager.default.removeItem(at: input) }
        let script = TestData.packageRoot.appendingPathComponent("Tests/Support/shamir_interpolate.py")
        let result = try await ProcessRunner.run(TestData.python, [script.path, input.path])
        try #require(result.status == 0, "run ./scripts/test once to install shamir-mnemonic: \(result.stderr)")
        #expect(result.stdout.split(separator: "\n").map(String.init) == secrets)
    }
}
