import Attestation
import Crypto
import Foundation
import Manifest
import Store
import SwiftASN1
import X509

/// Marble activation (compat §2): the quote checked against the manifest's package, the CSR's
/// names, one state epoch from the checks to the count, then the certificate and parameters.
extension Coordinator {
    /// Activates a marble (compat §2). `peerCertificate` is the DER certificate the marble
    /// presented on the mutual-TLS connection; the quote must bind it. On any error nothing
    /// changes: no certificate is issued and no activation is counted.
    public func activate(_ request: ActivationRequest, peerCertificate: [UInt8]) async throws(CoordinatorError)
        -> ActivationParameters
    {
        try await synchronize()
        // Everything below is checked against this state; issuing and counting refuse if it changed.
        let epoch = stateEpoch
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
        guard let package = effectivePackage(marble.package, in: manifest) else {
            throw CoordinatorError(.internalFailure, "the manifest's package \(marble.package) is missing")
        }
        let (quote, collateral) = try await preparedQuote(request.quote)
        // Verification and signing run off the actor, so activations use every core.
        let csr = try await Self.attest(
            quote, with: collateral, verifier: verifier, at: configuration.now(), peerCertificate: peerCertificate,
            package: package, packageName: marble.package, csr: request.csr)

        let uuidRecord = "uuid/\(uuid.uuidString.lowercased())"
        let knownType = try await sealed.read(uuidRecord).map { String(decoding: $0.bytes, as: UTF8.self) }
        if let knownType, knownType != request.marbleType { throw Self.uuidOfAnotherType(uuid.uuidString.lowercased()) }
        // Every activation counts, a known UUID's too (MarbleRun: activations >= MaxActivations
        // refuses): otherwise a host could start any number of copies under one UUID.
        // A fast refusal before issuing anything (one read: shards, which only hold activations
        // from before a limit was set, are added by the count's commit, which checks again).
        if marble.maxActivations > 0,
            try await readCount(record: "count/\(request.marbleType)").count >= marble.maxActivations
        {
            throw CoordinatorError(
                .activationLimit,
                "marble type \(request.marbleType) may be activated \(marble.maxActivations) time(s); it has been")
        }
        try checkEpoch(epoch)
        let issuer = try parameterIssuer()
        let parameters = try await Self.issue(
            issuer, marble: marble, manifest: manifest, marbleType: request.marbleType, uuid: uuid, csr: csr,
            now: configuration.now())
        try await countActivation(
            of: request.marbleType, uuidRecord: knownType == nil ? uuidRecord : nil, limit: marble.maxActivations,
            epoch: epoch)
        return parameters
    }

    static let manifestChanged = CoordinatorError(
        .manifestChanged, "the manifest changed during activation; nothing was issued or counted: retry")

    static func uuidOfAnotherType(_ uuid: String) -> CoordinatorError {
        CoordinatorError(
            .invalidRequest, "UUID \(uuid) was activated as another marble type; a UUID belongs to one marble")
    }

    /// Refuses an activation checked under an earlier state than the current one.
    private func checkEpoch(_ epoch: UInt64) throws(CoordinatorError) {
        guard epoch == stateEpoch else { throw Self.manifestChanged }
    }

    /// The issuer for the current PKI and secrets, made again after every change of the state;
    /// the marble types' parameter plans only when the manifest changed, since a user's secret
    /// write must not make the next activation parse every type's templates.
    private func parameterIssuer() throws(CoordinatorError) -> ParameterIssuer {
        if let issuer = cachedIssuer { return issuer }
        var plans: [String: Result<ParameterPlan, CoordinatorError>] = [:]
        if let document, let manifest = document.manifest {
            let fingerprint = document.fingerprint
            if let cached = cachedPlans, cached.fingerprint == fingerprint {
                plans = cached.plans
            } else {
                plans = ParameterPlan.plans(for: manifest)
                cachedPlans = (fingerprint, plans)
            }
        }
        do {
            let issuer = try ParameterIssuer(
                pki: pki, marbleCertificateValidity: configuration.marbleCertificateValidity,
                sharedSecrets: sharedSecrets.merging(core.userDefinedSecrets) { shared, _ in shared },
                previousSecrets: core.previousSecretValues, rootSecret: rootSecret, plans: plans)
            cachedIssuer = issuer
            return issuer
        } catch {
            throw CoordinatorError(.internalFailure, "the Coordinator's certificates do not serialize")
        }
    }

    /// The parsed quote and the prepared collateral of its platform (prepared once while valid).
    func preparedQuote(_ bytes: [UInt8]) async throws(CoordinatorError) -> (Quote, PreparedCollateral) {
        do {
            let quote = try Quote(parsing: bytes)
            let collateral = try await collateralProvider.collateral(for: quote)
            let now = configuration.now()
            var hasher = SHA256()
            for part in [
                collateral.tcbInfo.bytes, collateral.qeIdentity.bytes, collateral.rootCACRL.der, collateral.pckCRL.der,
            ] {
                hasher.update(data: part)
            }
            let key = hasher.finalize()
            if let known = prepared[key], now <= known.validUntil { return (quote, known) }
            let preparedCollateral = try verifier.prepare(collateral, at: now)
            prepared = prepared.filter { now <= $0.value.validUntil }
            prepared[key] = preparedCollateral
            return (quote, preparedCollateral)
        } catch {
            throw Self.rejected(error)
        }
    }

    private static func rejected(_ error: AttestationError) -> CoordinatorError {
        if error.code == .collateralUnavailable {
            return CoordinatorError(
                .collateralUnavailable, "the quote's collateral cannot be fetched now: \(error.message); retry")
        }
        return CoordinatorError(.attestation, "the quote was rejected: \(error.message) [\(error.code)]")
    }

    /// Verifies the quote, its binding to the marble's TLS key and the package policy, and
    /// parses the CSR.
    nonisolated private static func attest(
        _ quote: Quote, with collateral: PreparedCollateral, verifier: QuoteVerifier, at now: Date,
        peerCertificate: [UInt8], package: Manifest.Package, packageName: String, csr: [UInt8]
    ) async throws(CoordinatorError) -> CertificateSigningRequest {
        let request = try parseCSR(csr)
        let verified: VerifiedQuote
        do {
            verified = try verifier.verify(quote, with: collateral, at: now)
        } catch {
            throw rejected(error)
        }
        try checkBinding(verified, peerCertificate: peerCertificate)
        // The certificate is issued for the attested key only: the key the quote binds through
        // the TLS certificate is the one the marble's mesh identity must use.
        guard let peer = try? Certificate(derEncoded: peerCertificate), peer.publicKey == request.publicKey else {
            throw CoordinatorError(
                .keyBinding,
                "the CSR is for another key than the TLS certificate the quote binds: a marble's certificate is issued for its attested key only"
            )
        }
        do {
            try PackagePolicy(package).check(verified)
        } catch {
            throw CoordinatorError(.attestation, "the quote does not match package \(packageName): \(error.message)")
        }
        return request
    }

    nonisolated private static func issue(
        _ issuer: ParameterIssuer, marble: Manifest.Marble, manifest: Manifest, marbleType: String, uuid: UUID,
        csr: CertificateSigningRequest, now: Date
    ) async throws(CoordinatorError) -> ActivationParameters {
        do {
            return try issuer.renderParameters(
                marble: marble, manifest: manifest, marbleType: marbleType, uuid: uuid, csr: csr, now: now)
        } catch let error as CoordinatorError {
            throw error
        } catch {
            throw CoordinatorError(.internalFailure, "issuing the marble's certificate failed")
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

    /// A marble's CSR: DER, a signature that verifies, and only DNS names and IP addresses asked for.
    public static func parseCSR(_ der: [UInt8]) throws(CoordinatorError) -> CertificateSigningRequest {
        guard let csr = try? CertificateSigningRequest(derEncoded: der) else {
            throw CoordinatorError(.invalidRequest, "the CSR is not a DER certificate signing request")
        }
        guard csr.publicKey.isValidSignature(csr.signature, for: csr) else {
            throw CoordinatorError(.invalidRequest, "the CSR's signature does not verify")
        }
        _ = try requestedNames(csr)
        return csr
    }

    /// The names a marble's CSR asks for: DNS names and IP addresses only, as MarbleRun copies
    /// them. Any other kind (URI, email, otherName, directory name, …) would let an attested
    /// marble get a mesh certificate naming another service by an identity peers may check.
    static func requestedNames(_ csr: CertificateSigningRequest) throws(CoordinatorError) -> SubjectAlternativeNames {
        let names: SubjectAlternativeNames?
        do {
            names = try csr.attributes.extensionRequest?.extensions.subjectAlternativeNames
        } catch {
            throw CoordinatorError(.invalidRequest, "the CSR's subject alternative names do not parse")
        }
        for name in names ?? SubjectAlternativeNames() {
            switch name {
            case .dnsName, .ipAddress: continue
            default:
                throw CoordinatorError(
                    .invalidRequest,
                    "the CSR asks for the subject alternative name \(String(describing: name).prefix(128)); a marble certificate names DNS names and IP addresses only"
                )
            }
        }
        return names ?? SubjectAlternativeNames()
    }
}

extension PackagePolicy {
    /// The policy of a manifest package.
    init(_ package: Manifest.Package) {
        func bytes(_ hex: String?) -> [UInt8]? { hex.flatMap(Hex.decode) }
        self.init(
            debug: package.debug, uniqueID: bytes(package.uniqueID), signerID: bytes(package.signerID),
            productID: package.productID.map { UInt16(truncatingIfNeeded: $0) },
            securityVersion: package.securityVersion.map { UInt16(truncatingIfNeeded: $0) },
            acceptedTCBStatuses: (package.acceptedTCBStatuses ?? []).map(TCBStatus.init(rawValue:)),
            acceptedAdvisories: package.acceptedAdvisories ?? [])
        if package.isTDX {
            // A TDX package without a valid MRTD never validates; if one got here, nothing matches it.
            tdx = TDXMeasurementRule(
                mrTD: bytes(package.tdx.mrTD) ?? [], rtmrs: package.tdx.rtmrs.compactMapValues(Hex.decode),
                mrSeam: bytes(package.tdx.mrSeam),
                tdAttributes: bytes(package.tdx.tdAttributes), xfam: bytes(package.tdx.xfam))
        }
    }
}
