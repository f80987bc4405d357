import Attestation
import Crypto
import Foundation
import Manifest
import SwiftASN1
import X509

/// The Coordinator's logic without networking (compat §1–§5): its state, CA, manifest, secrets
/// and marble activation. Servers call these async functions; tests call them directly.
public actor Coordinator {
    /// MarbleRun's state codes.
    public enum State: Int, Sendable {
        case uninitialized = 0
        case recovery = 1
        case acceptingManifest = 2
        case acceptingMarbles = 3

        public var message: String {
            switch self {
            case .uninitialized: return "Coordinator is starting."
            case .recovery:
                return
                    "Coordinator is in recovery mode. Either upload a key to unseal the saved state, or set a new manifest."
            case .acceptingManifest: return "Coordinator is ready to accept a manifest."
            case .acceptingMarbles: return "Coordinator is running correctly and ready to accept marbles."
            }
        }
    }

    public struct Configuration: Sendable {
        public var curve: CACurve = .p256
        /// Validity of marble certificates.
        public var marbleCertificateValidity: TimeInterval = 365 * 86_400
        /// Unknown manifest fields are errors instead of warnings.
        public var strictManifest = false
        public var now: @Sendable () -> Date = Date.init

        public init() {}
    }

    /// The result of setting a manifest.
    public struct ManifestResult: Sendable {
        /// Warnings the manifest check found (unknown fields and the like): shown to the user.
        public var warnings: [ManifestProblem]
    }

    let configuration: Configuration
    let verifier: QuoteVerifier
    let collateralProvider: any CollateralProvider
    public private(set) var state: State = .acceptingManifest
    public private(set) var pki: CoordinatorPKI
    let rootSecret: SymmetricKey
    private var document: ManifestDocument?
    private(set) var sharedSecrets: [String: SecretValue] = [:]
    private var activations: [String: UInt64] = [:]
    private var activatedUUIDs: [UUID: String] = [:]
    private var prepared: [SHA256Digest: PreparedCollateral] = [:]

    public init(
        configuration: Configuration = Configuration(), verifier: QuoteVerifier,
        collateralProvider: any CollateralProvider
    ) throws {
        self.configuration = configuration
        self.verifier = verifier
        self.collateralProvider = collateralProvider
        pki = try CoordinatorPKI.generate(curve: configuration.curve, now: configuration.now())
        rootSecret = SymmetricKey(size: .bits256)
    }

    /// The manifest as set, its exact bytes and fingerprint; nil before one is set.
    public var manifest: ManifestDocument? { document }

    /// Activations so far, by marble type.
    public func activationCount(_ marbleType: String) -> UInt64 { activations[marbleType] ?? 0 }

    // MARK: Manifest

    /// Validates and sets the manifest, generating its shared secrets. Allowed once, in
    /// ``State/acceptingManifest``; on any error nothing changes.
    public func setManifest(_ bytes: [UInt8]) throws(CoordinatorError) -> ManifestResult {
        guard state == .acceptingManifest else {
            throw CoordinatorError(
                .wrongState, "a manifest is already set; change it with an update (state \(state.rawValue))")
        }
        let document = ManifestDocument.parse(bytes, options: ManifestOptions(strict: configuration.strictManifest))
        guard document.isValid, let manifest = document.manifest else {
            let summary = document.errors.prefix(20).map(\.description).joined(separator: "; ")
            throw CoordinatorError(.invalidManifest, "the manifest has \(document.errors.count) error(s): \(summary)")
        }
        var secrets: [String: SecretValue] = [:]
        let factory = SecretFactory(pki: pki, now: configuration.now())
        do {
            for (name, definition) in manifest.secrets where definition.shared && !definition.userDefined {
                secrets[name] = try factory.generateShared(definition)
            }
        } catch let error as CoordinatorError {
            throw error
        } catch {
            throw CoordinatorError(.internalFailure, "generating the manifest's secrets failed")
        }
        self.document = document
        sharedSecrets = secrets
        state = .acceptingMarbles
        return ManifestResult(warnings: document.warnings)
    }

    // MARK: Activation

    /// Activates a marble (compat §2). `peerCertificate` is the DER certificate the marble
    /// presented on the mutual-TLS connection; the quote must bind it. On any error nothing
    /// changes: no certificate is issued and no activation is counted.
    public func activate(_ request: ActivationRequest, peerCertificate: [UInt8]) async throws(CoordinatorError)
        -> ActivationParameters
    {
        guard state == .acceptingMarbles, let document, let manifest = document.manifest else {
            throw CoordinatorError(
                .wrongState, "no manifest is set yet: the Coordinator cannot activate marbles (state \(state.rawValue))"
            )
        }
        guard let marble = manifest.marbles[request.marbleType] else {
            throw CoordinatorError(
                .unknownMarbleType, "the manifest has no marble type \"\(request.marbleType.prefix(64))\"")
        }
        guard let uuid = UUID(uuidString: request.uuid) else {
            throw CoordinatorError(.invalidRequest, "the UUID \"\(request.uuid.prefix(64))\" is not a UUID")
        }
        let csr = try Self.parseCSR(request.csr)
        let verified = try await verifyQuote(request.quote)
        try Self.checkBinding(verified, peerCertificate: peerCertificate)
        guard let package = manifest.packages[marble.package] else {
            throw CoordinatorError(.internalFailure, "the manifest's package \(marble.package) is missing")
        }
        do {
            try PackagePolicy(package).check(verified)
        } catch {
            throw CoordinatorError(.attestation, "the quote does not match package \(marble.package): \(error.message)")
        }

        // Await-free from here: the activation count and issuance happen together.
        let isReactivation = activatedUUIDs[uuid] == request.marbleType
        let count = activations[request.marbleType] ?? 0
        if !isReactivation, marble.maxActivations > 0, count >= marble.maxActivations {
            throw CoordinatorError(
                .activationLimit,
                "marble type \(request.marbleType) may be activated \(marble.maxActivations) time(s); it has been")
        }
        let now = configuration.now()
        let parameters: ActivationParameters
        do {
            parameters = try renderParameters(
                marble: marble, manifest: manifest, marbleType: request.marbleType, uuid: uuid, csr: csr, now: now)
        } catch let error as CoordinatorError {
            throw error
        } catch {
            throw CoordinatorError(.internalFailure, "issuing the marble's certificate failed")
        }
        if !isReactivation {
            activations[request.marbleType] = count + 1
            activatedUUIDs[uuid] = request.marbleType
        }
        return parameters
    }

    private func verifyQuote(_ bytes: [UInt8]) async throws(CoordinatorError) -> VerifiedQuote {
        do {
            let quote = try Quote(parsing: bytes)
            let collateral = try await collateralProvider.collateral(for: quote)
            let now = configuration.now()
            let key = SHA256.hash(
                data: collateral.tcbInfo.bytes + collateral.qeIdentity.bytes + collateral.rootCACRL.der
                    + collateral.pckCRL.der)
            let preparedCollateral: PreparedCollateral
            if let known = prepared[key], now <= known.validUntil {
                preparedCollateral = known
            } else {
                preparedCollateral = try verifier.prepare(collateral, at: now)
                prepared = prepared.filter { now <= $0.value.validUntil }
                prepared[key] = preparedCollateral
            }
            return try verifier.verify(quote, with: preparedCollateral, at: now)
        } catch {
            throw CoordinatorError(.attestation, "the quote was rejected: \(error.message) [\(error.code)]")
        }
    }

    /// The quote's report data must start with SHA-256 of the marble's TLS certificate (or, as
    /// EGo marbles do, of its public key info).
    static func checkBinding(_ quote: VerifiedQuote, peerCertificate: [UInt8]) throws(CoordinatorError) {
        let bound = Array(quote.reportData.prefix(32))
        if bound == Array(SHA256.hash(data: peerCertificate)) { return }
        if let certificate = try? Certificate(derEncoded: peerCertificate) {
            var spki = DER.Serializer()
            if (try? spki.serialize(certificate.publicKey)) != nil,
                bound == Array(SHA256.hash(data: spki.serializedBytes))
            {
                return
            }
        }
        throw CoordinatorError(
            .keyBinding,
            "the quote does not bind the TLS certificate of this connection (a quote is only valid for the key it was made for)"
        )
    }

    static func parseCSR(_ der: [UInt8]) throws(CoordinatorError) -> CertificateSigningRequest {
        guard let csr = try? CertificateSigningRequest(derEncoded: der) else {
            throw CoordinatorError(.invalidRequest, "the CSR is not a DER certificate signing request")
        }
        guard csr.publicKey.isValidSignature(csr.signature, for: csr) else {
            throw CoordinatorError(.invalidRequest, "the CSR's signature does not verify")
        }
        return csr
    }
}

extension PackagePolicy {
    /// The policy of a manifest package.
    init(_ package: Manifest.Package) {
        func bytes(_ hex: String?) -> [UInt8]? {
            guard let hex else { return nil }
            var result: [UInt8] = []
            var index = hex.startIndex
            while index < hex.endIndex {
                let next = hex.index(index, offsetBy: 2)
                guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
                result.append(byte)
                index = next
            }
            return result
        }
        self.init(
            debug: package.debug, uniqueID: bytes(package.uniqueID), signerID: bytes(package.signerID),
            productID: package.productID.map { UInt16(truncatingIfNeeded: $0) },
            securityVersion: package.securityVersion.map { UInt16(truncatingIfNeeded: $0) },
            acceptedTCBStatuses: (package.acceptedTCBStatuses ?? []).map(TCBStatus.init(rawValue:)),
            acceptedAdvisories: package.acceptedAdvisories ?? [])
    }
}
