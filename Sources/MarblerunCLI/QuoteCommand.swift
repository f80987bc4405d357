import ArgumentParser
import Attestation
import Foundation
import X509

/// `marblerun quote …`
struct QuoteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quote", abstract: "Verify SGX and TDX DCAP quotes.", subcommands: [QuoteVerifyCommand.self])
}

/// `marblerun quote verify QUOTE --collateral PATH [--root PEM] [--at TIME] [--json]`
struct QuoteVerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify a DCAP quote with its collateral and print its claims.",
        discussion: """
            The quote may be raw or wrapped in MarbleRun's OpenEnclave header. The collateral is a \
            JSON bundle as dcap-qvl stores it, or a folder in Intel PCS layout (tcbInfo.json, \
            qeIdentity.json, tcbSignChain.pem, rootCaCrl.der, intermediateCaCrl.der, pckSignChain.pem). \
            Exits 1 with the reason when the quote is rejected.
            """
    )

    @Argument(help: "The quote file.")
    var quote: String

    @Option(help: "Collateral: a dcap-qvl JSON bundle or an Intel PCS folder.")
    var collateral: String

    @Option(help: "PEM of the trusted root (default: Intel's SGX Root CA).")
    var root: String?

    @Option(help: "Verify as of this time: RFC 3339 (2025-07-01T00:00:00Z) or Unix seconds (default: now).")
    var at: String?

    @Flag(help: "Print the result as JSON.")
    var json = false

    func run() async throws {
        let time = try parseTime()
        do {
            let quoteBytes = try readFile(quote, what: "quote")
            let parsed = try Quote(parsing: quoteBytes)
            let loaded = try FileCollateralProvider(location: URL(fileURLWithPath: collateral)).load()
            var verifier = QuoteVerifier()
            if let root {
                let text = String(decoding: try readFile(root, what: "root certificate"), as: UTF8.self)
                guard let certificate = try? Certificate(pemEncoded: text) else {
                    throw AttestationError(.malformedCertificate, "\(root) is not a PEM certificate")
                }
                verifier = QuoteVerifier(trustedRoot: certificate)
            }
            let verified = try verifier.verify(parsed, collateral: loaded, at: time)
            print(json ? QuoteReport.json(verified) : QuoteReport.text(verified), terminator: json ? "\n" : "")
        } catch let error as AttestationError {
            if json {
                print(QuoteReport.json(rejection: error))
            } else {
                printError("rejected: \(error.message) [\(error.code)]")
            }
            throw ExitCode(1)
        }
    }

    private func parseTime() throws -> Date {
        guard let at else { return Date() }
        if let seconds = Double(at) { return Date(timeIntervalSince1970: seconds) }
        if let date = ISO8601DateFormatter().date(from: at) { return date }
        throw ValidationError("--at takes an RFC 3339 time such as 2025-07-01T00:00:00Z or Unix seconds, got \(at)")
    }
}

func readFile(_ path: String, what: String) throws(AttestationError) -> [UInt8] {
    do {
        return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    } catch {
        throw AttestationError(.malformedQuote, "cannot read the \(what) \(path)")
    }
}

enum QuoteReport {
    static func hex(_ bytes: [UInt8]) -> String { Hex.encode(bytes) }

    static func text(_ quote: VerifiedQuote) -> String {
        var lines = [
            "TEE:             \(quote.tee.rawValue)",
            "UniqueID:        \(hex(quote.uniqueID))",
        ]
        if quote.tee == .sgx {
            lines += [
                "SignerID:        \(hex(quote.signerID))",
                "ProductID:       \(quote.productID)",
                "SecurityVersion: \(quote.securityVersion)",
            ]
        }
        lines += [
            "Debug:           \(quote.debug)",
            "ReportData:      \(hex(quote.reportData))",
            "TCB status:      \(quote.tcbStatus)",
            "Advisories:      \(quote.advisoryIDs.isEmpty ? "none" : quote.advisoryIDs.joined(separator: ", "))",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    static func json(_ quote: VerifiedQuote) -> String {
        var object: [String: Any] = [
            "verified": true, "tee": quote.tee.rawValue, "uniqueID": hex(quote.uniqueID), "debug": quote.debug,
            "reportData": hex(quote.reportData), "tcbStatus": quote.tcbStatus.rawValue,
            "advisoryIDs": quote.advisoryIDs,
            "qeTCBStatus": quote.qeTCBStatus.rawValue, "platformTCBStatus": quote.platformTCBStatus.rawValue,
            "fmspc": hex(quote.fmspc),
        ]
        if quote.tee == .sgx {
            object["signerID"] = hex(quote.signerID)
            object["productID"] = Int(quote.productID)
            object["securityVersion"] = Int(quote.securityVersion)
        }
        if let td = quote.td {
            object["mrTD"] = hex(td.mrTD)
            object["rtmrs"] = td.rtmrs.map(hex)
            object["mrConfigID"] = hex(td.mrConfigID)
            object["mrOwner"] = hex(td.mrOwner)
            object["mrSeam"] = hex(td.mrSeam)
        }
        return serialize(object)
    }

    static func json(rejection: AttestationError) -> String {
        serialize(["verified": false, "code": rejection.code.rawValue, "reason": rejection.message])
    }

    static func serialize(_ object: [String: Any]) -> String {
        let data =
            (try? JSONSerialization.data(
                withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}
