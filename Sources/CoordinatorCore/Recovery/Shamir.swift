import Crypto

/// Shamir's secret sharing over GF(2⁸) — the AES field, reduced by x⁸ + x⁴ + x³ + x + 1 — one
/// polynomial per secret byte, as HashiCorp Vault's `shamir` package (which MarbleRun uses)
/// does. A share is the secret's length of y values followed by its x coordinate (1…255).
enum Shamir {
    struct Failure: Error, Hashable, CustomStringConvertible {
        var description: String
    }

    /// `count` shares of which any `threshold` give back `secret`; fewer tell nothing about it.
    /// The polynomials' coefficients come from swift-crypto's random generator.
    static func split(_ secret: [UInt8], count: Int, threshold: Int) throws(Failure) -> [[UInt8]] {
        try split(secret, count: count, threshold: threshold) { length in
            SymmetricKey(size: .init(bitCount: length * 8)).withUnsafeBytes { Array($0) }
        }
    }

    /// As ``split(_:count:threshold:)`` with the coefficients' bytes from `random`, for tests.
    static func split(_ secret: [UInt8], count: Int, threshold: Int, random: (Int) -> [UInt8]) throws(Failure)
        -> [[UInt8]]
    {
        guard !secret.isEmpty else { throw Failure(description: "the secret is empty") }
        guard (2...255).contains(threshold), threshold <= count, count <= 255 else {
            throw Failure(description: "need 2 ≤ threshold ≤ shares ≤ 255, got \(threshold) of \(count)")
        }
        // coefficients[i] holds the (threshold - 1) random coefficients of byte i's polynomial.
        let randomBytes = random(secret.count * (threshold - 1))
        var shares = (1...count).map { x in [UInt8](repeating: 0, count: secret.count) + [UInt8(x)] }
        for (index, byte) in secret.enumerated() {
            let coefficients = [byte] + randomBytes[(index * (threshold - 1))..<((index + 1) * (threshold - 1))]
            for share in shares.indices {
                shares[share][index] = evaluate(coefficients, at: UInt8(share + 1))
            }
        }
        return shares
    }

    /// The secret from `threshold` or more distinct shares. Which threshold was used cannot be
    /// seen from the shares: too few give a wrong value, which the caller must detect.
    static func combine(_ shares: [[UInt8]]) throws(Failure) -> [UInt8] {
        guard shares.count >= 2 else { throw Failure(description: "at least 2 shares are needed") }
        let length = shares[0].count
        guard length >= 2, shares.allSatisfy({ $0.count == length }) else {
            throw Failure(description: "the shares are not all of the same length")
        }
        let xs = shares.map { $0[length - 1] }
        guard !xs.contains(0), Set(xs).count == xs.count else {
            throw Failure(description: "the shares' x coordinates are not distinct and nonzero")
        }
        return (0..<(length - 1)).map { index in interpolateAtZero(xs: xs, ys: shares.map { $0[index] }) }
    }

    // MARK: GF(2⁸)

    /// exp[i] = 3^i and log[3^i] = i: 3 (x + 1) generates the field's multiplicative group.
    private static let tables: (exp: [UInt8], log: [UInt8]) = {
        var exp = [UInt8](repeating: 0, count: 255)
        var log = [UInt8](repeating: 0, count: 256)
        var value: UInt16 = 1
        for power in 0..<255 {
            exp[power] = UInt8(value)
            log[Int(value)] = UInt8(power)
            value ^= value << 1
            if value & 0x100 != 0 { value ^= 0x11B }
        }
        return (exp, log)
    }()

    static func multiply(_ a: UInt8, _ b: UInt8) -> UInt8 {
        guard a != 0, b != 0 else { return 0 }
        return tables.exp[(Int(tables.log[Int(a)]) + Int(tables.log[Int(b)])) % 255]
    }

    /// a / b for b ≠ 0.
    static func divide(_ a: UInt8, _ b: UInt8) -> UInt8 {
        precondition(b != 0, "division by zero in GF(2^8)")
        guard a != 0 else { return 0 }
        return tables.exp[(Int(tables.log[Int(a)]) - Int(tables.log[Int(b)]) + 255) % 255]
    }

    /// Horner's rule; coefficients[0] is the constant term.
    private static func evaluate(_ coefficients: [UInt8], at x: UInt8) -> UInt8 {
        coefficients.reversed().reduce(0) { multiply($0, x) ^ $1 }
    }

    /// Lagrange interpolation at 0: Σ yᵢ · Π_{j≠i} xⱼ / (xⱼ − xᵢ), subtraction being XOR.
    private static func interpolateAtZero(xs: [UInt8], ys: [UInt8]) -> UInt8 {
        var result: UInt8 = 0
        for (i, xi) in xs.enumerated() {
            var basis: UInt8 = 1
            for (j, xj) in xs.enumerated() where j != i {
                basis = multiply(basis, divide(xj, xj ^ xi))
            }
            result ^= multiply(ys[i], basis)
        }
        return result
    }
}
