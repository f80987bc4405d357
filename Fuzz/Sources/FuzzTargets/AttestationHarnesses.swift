import Attestation
import CoordinatorTesting
import Foundation
import JSONText
import SwiftASN1
import X509

/// The real collateral of `../shared/testdata/dcap/dcap-qvl`, prepared (every signature and
/// CRL checked) at the time its README pins.
enum RealCollateral {
    static let time = Date(timeIntervalSince1970: 1_751_328_000)
    static let verifier = QuoteVerifier()

    static func bundle(_ name: String) throws -> [UInt8] {
        try TestData.bytes("dcap/dcap-qvl/\(name)_collateral.json")
    }

    /// The string `member` of a dcap-qvl bundle (`tcb_info`, `qe_identity` are the exact signed text).
    static func member(_ member: String, of bundle: String) throws -> String {
        guard case .object(let members) = try JSONParser().parse(try Self.bundle(bundle)),
            case .string(let text)? = members.first(where: { $0.key == member })?.value
        else { throw FuzzSetupError("\(bundle): no \(member)") }
        return text
    }

    static func signedText(_ name: String, of bundle: String) throws -> [UInt8] {
        Array(try member(name, of: bundle).utf8)
    }
}

/// `Quote(parsing:)` and a full verification against real, prepared collateral (SGX and TDX).
struct QuoteHarness: FuzzHarness {
    static let name = "quote"
    static let surface = "an SGX/TDX quote: parsing, then DCAP verification with prepared real collateral"
    let prepared: [PreparedCollateral]

    init() throws {
        prepared = try ["sgx_quote", "tdx_quote"].map {
            try RealCollateral.verifier.prepare(
                Collateral(dcapQVLBundle: RealCollateral.bundle($0)), at: RealCollateral.time)
        }
    }

    static func seeds() throws -> [(name: String, bytes: [UInt8])] {
        try [
            "dcap/dcap-qvl/sgx_quote", "dcap/dcap-qvl/tdx_quote", "dcap/dcap-qvl/tdx_quote_outdated",
            "dcap/intel-qvl-sample/quote.dat",
        ].map { ($0, try TestData.bytes($0)) }
    }

    func run(_ input: [UInt8]) -> Bool {
        guard let quote = try? Quote(parsing: input) else { return false }
        var verified = false
        for collateral in prepared {
            if (try? RealCollateral.verifier.verify(quote, with: collateral, at: RealCollateral.time)) != nil {
                verified = true
            }
        }
        return verified
    }
}

/// TCB Info JSON as Intel signs it.
struct TCBInfoHarness: FuzzHarness {
    static let name = "tcb-info"
    static let surface = "TCB Info JSON (v2 and v3, SGX and TDX)"
    init() {}

    static func seeds() throws -> [(name: String, bytes: [UInt8])] {
        var seeds = try ["sgx_quote", "tdx_quote", "tdx_quote_outdated"].map {
            ("\($0) tcb_info", try RealCollateral.signedText("tcb_info", of: $0))
        }
        if case .object(let members) = try JSONParser().parse(TestData.bytes("dcap/intel-qvl-sample/tcbInfo.json")),
            let info = members.first(where: { $0.key == "tcbInfo" })
        {
            seeds.append(("intel-qvl-sample tcbInfo", info.value.serialized()))
        }
        return seeds
    }

    func run(_ input: [UInt8]) -> Bool { (try? TCBInfo(jsonBytes: input)) != nil }
}

/// QE Identity JSON as Intel signs it.
struct QEIdentityHarness: FuzzHarness {
    static let name = "qe-identity"
    static let surface = "QE Identity JSON"
    init() {}

    static func seeds() throws -> [(name: String, bytes: [UInt8])] {
        try ["sgx_quote", "tdx_quote", "tdx_quote_outdated"].map {
            ("\($0) qe_identity", try RealCollateral.signedText("qe_identity", of: $0))
        }
    }

    func run(_ input: [UInt8]) -> Bool { (try? EnclaveIdentity(jsonBytes: input)) != nil }
}

/// A DER CRL, checked against the real chain: issuer signature and time, then a revocation look-up.
struct CRLHarness: FuzzHarness {
    static let name = "crl"
    static let surface = "a DER certificate revocation list: parsing, issuer signature, look-up"
    let issuers: [Certificate]

    init() throws {
        issuers = [TrustAnchors.intelSGXRootCA] + (try Self.chainCertificates())
    }

    static func chainCertificates() throws -> [Certificate] {
        let chain = try RealCollateral.member("pck_crl_issuer_chain", of: "sgx_quote")
        return try PEMDocument.parseMultiple(pemString: chain).map { try Certificate(derEncoded: $0.derBytes) }
    }

    static func seeds() throws -> [(name: String, bytes: [UInt8])] {
        var seeds = try ["dcap/intel-qvl-sample/rootCaCrl.der", "dcap/intel-qvl-sample/intermediateCaCrl.der"].map {
            ($0, try TestData.bytes($0))
        }
        for key in ["root_ca_crl", "pck_crl"] {
            guard let der = Hex.decode(try RealCollateral.member(key, of: "sgx_quote")) else {
                throw FuzzSetupError("sgx_quote: \(key) is not hex")
            }
            seeds.append(("sgx_quote \(key)", der))
        }
        return seeds
    }

    func run(_ input: [UInt8]) -> Bool {
        guard let crl = try? CertificateRevocationList(derEncoded: input) else { return false }
        var valid = false
        for issuer in issuers {
            if (try? crl.validate(issuedBy: issuer, at: RealCollateral.time, name: "fuzzed CRL")) != nil {
                valid = true
            }
            _ = crl.isRevoked(issuer)
        }
        return valid
    }
}

/// A dcap-qvl collateral bundle, then its preparation: every certificate chain, CRL and
/// signature checked against Intel's root at the pinned time.
struct CollateralHarness: FuzzHarness {
    static let name = "collateral"
    static let surface = "a dcap-qvl collateral bundle: parsing and preparation (chains, CRLs, signatures)"
    init() {}

    static func seeds() throws -> [(name: String, bytes: [UInt8])] {
        try ["sgx_quote", "tdx_quote", "tdx_quote_outdated"].map { ($0, try RealCollateral.bundle($0)) }
    }

    func run(_ input: [UInt8]) -> Bool {
        guard let collateral = try? Collateral(dcapQVLBundle: input) else { return false }
        return (try? RealCollateral.verifier.prepare(collateral, at: RealCollateral.time)) != nil
    }
}

/// A certificate, as DER or PEM, and the SGX PCK extension we read from it.
struct CertificateHarness: FuzzHarness {
    static let name = "certificate"
    static let surface = "a certificate (DER or PEM chain) and its SGX PCK extension"
    init() {}

    static func seeds() throws -> [(name: String, bytes: [UInt8])] {
        var seeds = try [
            "dcap/intel-qvl-sample/pckCert.pem", "dcap/intel-qvl-sample/pckSignChain.pem",
            "dcap/intel-sgx-root-ca.der",
        ].map { ($0, try TestData.bytes($0)) }
        let pck = try PEMDocument(pemString: try TestData.text("dcap/intel-qvl-sample/pckCert.pem"))
        seeds.append(("intel-qvl-sample pckCert.der", pck.derBytes))
        return seeds
    }

    func run(_ input: [UInt8]) -> Bool {
        var certificates: [Certificate] = []
        if let certificate = try? Certificate(derEncoded: input) {
            certificates.append(certificate)
        } else if let documents = try? PEMDocument.parseMultiple(pemString: String(decoding: input, as: UTF8.self)) {
            certificates = documents.compactMap { try? Certificate(derEncoded: $0.derBytes) }
        }
        return certificates.map { (try? PCKExtension(certificate: $0)) != nil }.contains(true)
    }
}

/// An enclave file: ELF sections, then the SIGSTRUCT and its RSA signature.
struct SigstructHarness: FuzzHarness {
    static let name = "sigstruct"
    static let surface = "an enclave file: ELF sections (.note.sgxmeta, .oeinfo) and the SIGSTRUCT"
    init() {}

    static func seeds() throws -> [(name: String, bytes: [UInt8])] {
        let section = try TestData.bytes("sigstruct/occlum-libos-sgxmeta.bin")
        return [
            ("occlum-libos-sgxmeta.bin", section),
            ("occlum sgxmeta in an ELF file", TestEnclaves.elf(section: ".note.sgxmeta", content: section)),
            ("occlum sgxmeta as .oeinfo", TestEnclaves.elf(section: ".oeinfo", content: section)),
        ]
    }

    func run(_ input: [UInt8]) -> Bool { (try? EnclaveImage.sigstruct(in: input, named: "fuzzed input")) != nil }
}
