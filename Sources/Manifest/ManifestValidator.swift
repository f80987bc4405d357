import Crypto
import Foundation
import SwiftASN1
import X509
import _CryptoExtras

/// Checks a ``Manifest`` against every rule of MarbleRun (compat §4) and the ones MarbleRun
/// leaves to runtime: identities are 64 hex digits, certificates and keys parse and are strong
/// enough, every name a field refers to exists, thresholds can be met, and every template
/// renders with stand-in secrets.
public struct ManifestValidator: Sendable {
    public init() {}

    /// All problems of the manifest, in the order of its sections.
    public func validate(_ manifest: Manifest) -> [ManifestProblem] {
        validate(manifest, undecodable: [:])
    }

    /// As ``validate(_:)``, where `undecodable` names entries (section → names, `*` for a whole
    /// section) that were present but unreadable: references to them are not reported again.
    func validate(_ manifest: Manifest, undecodable: [String: Set<String>]) -> [ManifestProblem] {
        var check = Check(manifest: manifest, undecodable: undecodable)
        check.run()
        return check.problems.problems
    }
}

private struct Check {
    let manifest: Manifest
    let undecodable: [String: Set<String>]
    var problems = ProblemList()

    init(manifest: Manifest, undecodable: [String: Set<String>]) {
        self.manifest = manifest
        self.undecodable = undecodable
    }

    /// The entry was written but could not be read: its absence is already reported.
    func unreadable(_ section: String, _ name: String) -> Bool {
        guard let names = undecodable[section] else { return false }
        return names.contains("*") || names.contains(name)
    }

    mutating func run() {
        checkPackages()
        checkInfrastructures()
        checkMarbles()
        checkSecrets()
        checkUsers()
        checkRoles()
        checkTLS()
        checkRecoveryKeys()
        checkConfig()
    }

    // MARK: Packages

    mutating func checkPackages() {
        let root = JSONPath.root.appending("Packages")
        if manifest.packages.isEmpty {
            problems.error(
                .missingSection, root, "a manifest needs at least one package: the enclave identities marbles may have")
        }
        for (name, package) in manifest.packages.sorted(by: { $0.key < $1.key }) {
            let path = root.appending(name)
            if let id = package.uniqueID {
                checkHexIdentity(id, path.appending("UniqueID"), what: "enclave's MRENCLAVE")
            }
            if let id = package.signerID {
                checkHexIdentity(id, path.appending("SignerID"), what: "enclave's MRSIGNER")
            }
            if let value = package.productID, value > UInt64(UInt16.max) {
                problems.error(
                    .outOfRange, path.appending("ProductID"),
                    "\(value) can never match: an enclave's ISVPRODID is at most 65535")
            }
            if let value = package.securityVersion, value > UInt64(UInt16.max) {
                problems.error(
                    .outOfRange, path.appending("SecurityVersion"),
                    "\(value) can never match: an enclave's ISVSVN is at most 65535")
            }
            let hasSignerFields = package.signerID != nil || package.productID != nil || package.securityVersion != nil
            if package.isTDX {
                checkTDX(package, path, sgxFields: package.uniqueID != nil || hasSignerFields)
            } else if package.uniqueID != nil && hasSignerFields {
                report(
                    debug: package.debug, .conflictingFields, path,
                    "give either UniqueID, or SignerID with ProductID and SecurityVersion, not both")
            } else if package.uniqueID == nil {
                if !hasSignerFields {
                    report(
                        debug: package.debug, .missingField, path,
                        "no identity: set UniqueID, or SignerID with ProductID and SecurityVersion")
                } else {
                    for (field, present) in [
                        ("SignerID", package.signerID != nil), ("ProductID", package.productID != nil),
                        ("SecurityVersion", package.securityVersion != nil),
                    ] where !present {
                        report(
                            debug: package.debug, .missingField, path.appending(field),
                            "required with SignerID, ProductID and SecurityVersion identify a package together")
                    }
                }
            }
            for (index, status) in (package.acceptedTCBStatuses ?? []).enumerated()
            where !ManifestVocabulary.tcbStatuses.contains(status) {
                problems.error(
                    .invalidValue, path.appending("AcceptedTCBStatuses").appending(index: index),
                    "unknown TCB status \"\(status.prefix(60))\"\(hint(status, ManifestVocabulary.tcbStatuses))")
            }
            for (index, advisory) in (package.acceptedAdvisories ?? []).enumerated() where !isAdvisoryID(advisory) {
                problems.warning(
                    .invalidValue, path.appending("AcceptedAdvisories").appending(index: index),
                    "\"\(advisory.prefix(60))\" does not look like an Intel advisory ID (INTEL-SA-00000) and will never match"
                )
            }
        }
    }

    /// MarbleRun lets debug packages through with a warning where it rejects others.
    mutating func report(debug: Bool, _ code: ManifestProblem.Code, _ path: JSONPath, _ message: String) {
        if debug {
            problems.warning(code, path, message + " (accepted only because Debug is true)")
        } else {
            problems.error(code, path, message)
        }
    }

    mutating func checkHexIdentity(_ value: String, _ path: JSONPath, what: String, digits: Int = 64) {
        let isHex = value.utf8.count == digits && HexString.decode(value) != nil
        if !isHex {
            let shown = value.count > 100 ? "\(value.prefix(100))…" : value
            problems.error(
                .notHex, path,
                "expected \(digits) hex digits (the \(what)), got \"\(shown)\" (\(value.count) characters)")
        }
    }

    /// A TDX package: MRTD required, the other measurements optional, no SGX identity fields.
    mutating func checkTDX(_ package: Manifest.Package, _ path: JSONPath, sgxFields: Bool) {
        if sgxFields {
            problems.error(
                .conflictingFields, path,
                "a package is SGX (UniqueID, or SignerID with ProductID and SecurityVersion) or TDX (MRTD, RTMR0–RTMR3, MRSEAM, TDAttributes, XFAM), never both"
            )
        }
        let tdx = package.tdx
        if let value = tdx.mrTD {
            checkHexIdentity(value, path.appending("MRTD"), what: "trust domain's MRTD", digits: 96)
        } else {
            problems.error(
                .missingField, path.appending("MRTD"),
                "a TDX package needs MRTD (the trust domain's build-time measurement); RTMR0–RTMR3, MRSEAM, TDAttributes and XFAM are optional"
            )
        }
        for (index, value) in tdx.rtmrs.sorted(by: { $0.key < $1.key }) {
            checkHexIdentity(value, path.appending("RTMR\(index)"), what: "trust domain's RTMR\(index)", digits: 96)
        }
        if let value = tdx.mrSeam {
            checkHexIdentity(value, path.appending("MRSEAM"), what: "TDX module's MRSEAM", digits: 96)
        }
        if let value = tdx.tdAttributes {
            checkHexIdentity(value, path.appending("TDAttributes"), what: "TD attributes", digits: 16)
        }
        if let value = tdx.xfam { checkHexIdentity(value, path.appending("XFAM"), what: "TD's XFAM", digits: 16) }
    }

    func isAdvisoryID(_ text: String) -> Bool {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        return parts.count == 3 && parts[0] == "INTEL" && parts[1] == "SA" && parts[2].count == 5
            && parts[2].allSatisfy { $0.isASCII && $0.isNumber }
    }

    // MARK: Infrastructures

    mutating func checkInfrastructures() {
        for (name, infrastructure) in manifest.infrastructures.sorted(by: { $0.key < $1.key }) {
            if let svn = infrastructure.cpuSVN, svn.count != 16 {
                problems.error(
                    .invalidValue, JSONPath.root.appending("Infrastructures").appending(name).appending("CPUSVN"),
                    "a CPUSVN is 16 bytes, got \(svn.count)")
            }
        }
    }

    // MARK: Marbles

    mutating func checkMarbles() {
        let root = JSONPath.root.appending("Marbles")
        if manifest.marbles.isEmpty {
            problems.error(.missingSection, root, "a manifest needs at least one marble")
        }
        let dummyValues = DryRun.values(for: manifest)
        for (name, marble) in manifest.marbles.sorted(by: { $0.key < $1.key }) {
            let path = root.appending(name)
            if marble.package.isEmpty {
                problems.error(
                    .missingField, path.appending("Package"), "every marble names the package its enclave must match")
            } else if manifest.packages[marble.package] == nil && !unreadable("Packages", marble.package) {
                problems.error(
                    .unknownReference, path.appending("Package"),
                    "no package named \"\(marble.package.prefix(60))\" in Packages\(hint(marble.package, Array(manifest.packages.keys)))"
                )
            }
            for (index, tag) in marble.tls.enumerated() where manifest.tls[tag] == nil && !unreadable("TLS", tag) {
                problems.error(
                    .unknownReference, path.appending("TLS").appending(index: index),
                    "no TLS tag named \"\(tag.prefix(60))\" in TLS\(hint(tag, Array(manifest.tls.keys)))")
            }
            let parameters = path.appending("Parameters")
            for (file, value) in marble.parameters.files.sorted(by: { $0.key < $1.key }) {
                let filePath = parameters.appending("Files").appending(file)
                if file.isEmpty || file.utf8.contains(0) {
                    problems.error(.invalidValue, filePath, "a file needs a path without NUL bytes")
                }
                checkTemplate(value, kind: .file, at: filePath, values: dummyValues)
            }
            for (variable, value) in marble.parameters.env.sorted(by: { $0.key < $1.key }) {
                let envPath = parameters.appending("Env").appending(variable)
                if variable.isEmpty || variable.contains("=") || variable.utf8.contains(0) {
                    problems.error(
                        .invalidValue, envPath, "an environment variable name must be non-empty, without '=' or NUL")
                }
                if variable.hasPrefix("MARBLE_PREDEFINED_") || variable == "MARBLE_TTLS_CONFIG" {
                    problems.warning(
                        .ignoredField, envPath,
                        "\(variable) is set by the Coordinator for every marble; this value is overwritten")
                }
                if value.data.contains(0) {
                    problems.error(.nulByte, envPath, "contains a NUL byte, which an environment variable cannot hold")
                    continue
                }
                checkTemplate(value, kind: .env, at: envPath, values: dummyValues)
            }
            for (index, argument) in (marble.parameters.argv ?? []).enumerated() where argument.utf8.contains(0) {
                problems.error(
                    .nulByte, parameters.appending("Argv").appending(index: index),
                    "contains a NUL byte, which an argument cannot hold")
            }
        }
    }

    mutating func checkTemplate(
        _ value: Manifest.ParameterValue, kind: Template.Kind, at path: JSONPath, values: TemplateValues
    ) {
        guard !value.noTemplates else { return }
        let template: Template
        do {
            template = try Template(parsing: value.data)
        } catch {
            problems.error(.template, path, "template \(error)")
            return
        }
        var referencesExist = true
        for action in template.actions where action.reference.scope != .marbleRun {
            let name = action.reference.name
            if unreadable("Secrets", name) {
                referencesExist = false
            } else if manifest.secrets[name] == nil {
                referencesExist = false
                problems.error(
                    .unknownReference, path,
                    "template line \(action.line), column \(action.column): \(action.reference) does not exist in Secrets\(hint(name, Array(manifest.secrets.keys)))"
                )
            }
        }
        guard referencesExist else { return }
        do {
            _ = try template.render(values, as: kind)
        } catch {
            problems.error(.template, path, "template \(error)")
        }
    }

    // MARK: Secrets

    mutating func checkSecrets() {
        let root = JSONPath.root.appending("Secrets")
        for (name, secret) in manifest.secrets.sorted(by: { $0.key < $1.key }) {
            let path = root.appending(name)
            let sizePath = path.appending("Size")
            let isCertificate = ManifestVocabulary.certificateSecretTypes.contains(secret.type)
            switch secret.type {
            case "symmetric-key":
                if let size = secret.size, size > 0, size % 8 == 0, size <= 8192 {
                    break
                }
                problems.error(
                    .invalidSize, sizePath,
                    "a symmetric-key needs Size in bits: a multiple of 8 from 8 to 8192 (e.g. 128 or 256), got \(secret.size.map(String.init) ?? "none")"
                )
            case "cert-rsa" where !secret.userDefined:
                guard let size = secret.size, size > 0 else {
                    problems.error(
                        .invalidSize, sizePath,
                        "a cert-rsa secret needs Size: the RSA key length in bits (2048, 3072 or 4096)")
                    break
                }
                if size < 2048 {
                    problems.error(.weakKey, sizePath, "RSA keys of \(size) bits are too weak: use at least 2048")
                } else if size > 16384 || size % 8 != 0 {
                    problems.error(
                        .invalidSize, sizePath, "RSA key size must be a multiple of 8 from 2048 to 16384, got \(size)")
                }
            case "cert-ecdsa" where !secret.userDefined:
                if let size = secret.size, ManifestVocabulary.ecdsaSizes.contains(size) { break }
                problems.error(
                    .invalidSize, sizePath,
                    "a cert-ecdsa secret needs Size naming its curve: 224, 256, 384 or 521, got \(secret.size.map(String.init) ?? "none")"
                )
            case "cert-ed25519":
                if let size = secret.size, size != 0 {
                    problems.error(.invalidSize, sizePath, "cert-ed25519 keys have a fixed size: remove Size")
                }
            case "plain":
                if !secret.userDefined {
                    problems.error(
                        .missingField, path.appending("UserDefined"),
                        "a plain secret is uploaded by a user: set UserDefined to true")
                }
                if secret.size != nil {
                    problems.warning(.ignoredField, sizePath, "plain secrets have no size; Size is ignored")
                }
            case "cert-rsa", "cert-ecdsa":
                break
            case "":
                problems.error(
                    .missingField, path.appending("Type"),
                    "set Type to one of \(ManifestVocabulary.secretTypes.joined(separator: ", "))")
            default:
                problems.error(
                    .invalidValue, path.appending("Type"),
                    "unknown secret type \"\(secret.type.prefix(60))\"\(hint(secret.type, ManifestVocabulary.secretTypes, listAll: true))"
                )
            }
            if !isCertificate && !secret.type.isEmpty && ManifestVocabulary.secretTypes.contains(secret.type) {
                if secret.cert != nil {
                    problems.warning(
                        .ignoredField, path.appending("Cert"),
                        "only certificate secrets use Cert; it is ignored for \(secret.type)")
                }
                if secret.validFor != nil {
                    problems.warning(
                        .ignoredField, path.appending("ValidFor"),
                        "only certificate secrets use ValidFor; it is ignored for \(secret.type)")
                }
            }
            if secret.privateKey != nil || secret.publicKey != nil {
                problems.warning(
                    .ignoredField, path,
                    "Private and Public are set by the Coordinator (or uploaded with `secret set`); the values here are ignored"
                )
            }
            if let cert = secret.cert {
                checkCertificateTemplate(cert, validFor: secret.validFor, at: path)
            }
        }
    }

    mutating func checkCertificateTemplate(
        _ cert: Manifest.CertificateTemplate, validFor: UInt64?, at secretPath: JSONPath
    ) {
        let path = secretPath.appending("Cert")
        let notBefore = cert.notBefore.flatMap { parseTime($0, at: path.appending("NotBefore")) }
        let notAfter = cert.notAfter.flatMap { parseTime($0, at: path.appending("NotAfter")) }
        if cert.notAfter != nil && validFor != nil {
            problems.error(
                .conflictingFields, secretPath.appending("ValidFor"), "give either ValidFor or Cert.NotAfter, not both")
        }
        if let notBefore, let notAfter, notAfter <= notBefore {
            problems.error(.invalidValue, path.appending("NotAfter"), "NotAfter must be later than NotBefore")
        }
        if let validFor, validFor > 36_500 {
            problems.error(.outOfRange, secretPath.appending("ValidFor"), "\(validFor) days is more than 100 years")
        }
        if let commonName = cert.subject?.commonName, commonName.count > 64 {
            problems.error(
                .outOfRange, path.appending("Subject").appending("CommonName"),
                "a common name holds at most 64 characters (RFC 5280), got \(commonName.count)")
        }
        if let serial = cert.serialNumber, serial.count > 48 || serial == "0" {
            problems.error(
                .outOfRange, path.appending("SerialNumber"), "a serial number is a positive integer of at most 20 bytes"
            )
        }
        if let keyUsage = cert.keyUsage, keyUsage > 511 {
            problems.error(
                .outOfRange, path.appending("KeyUsage"), "Go's x509.KeyUsage is a bit set of 9 bits (at most 511)")
        }
        for (index, usage) in (cert.extKeyUsage ?? []).enumerated() where usage > 13 {
            problems.error(
                .outOfRange, path.appending("ExtKeyUsage").appending(index: index),
                "Go's x509.ExtKeyUsage values run from 0 to 13")
        }
        if let maxPathLen = cert.maxPathLen, maxPathLen < -1 {
            problems.error(.outOfRange, path.appending("MaxPathLen"), "MaxPathLen is -1 (unset) or more")
        }
        for (index, address) in (cert.ipAddresses ?? []).enumerated() where IPAddress.parse(address) == nil {
            problems.error(
                .invalidValue, path.appending("IPAddresses").appending(index: index),
                "\"\(address.prefix(60))\" is not an IPv4 or IPv6 address")
        }
        for (index, name) in (cert.dnsNames ?? []).enumerated()
        where name.isEmpty || name.count > 253 || name.contains(" ") {
            problems.error(
                .invalidValue, path.appending("DNSNames").appending(index: index),
                "\"\(name.prefix(60))\" is not a DNS name")
        }
    }

    mutating func parseTime(_ text: String, at path: JSONPath) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        problems.error(
            .invalidValue, path, "expected an RFC 3339 time such as 2030-01-01T00:00:00Z, got \"\(text.prefix(60))\"")
        return nil
    }

    // MARK: Users and roles

    mutating func checkUsers() {
        let root = JSONPath.root.appending("Users")
        var owners: [[UInt8]: String] = [:]
        for (name, user) in manifest.users.sorted(by: { $0.key < $1.key }) {
            let path = root.appending(name)
            let certificatePath = path.appending("Certificate")
            if user.certificate.isEmpty {
                problems.error(
                    .missingField, certificatePath, "every user needs a PEM certificate to authenticate with")
            } else {
                do {
                    let der = try PEMDocument(pemString: user.certificate).derBytes
                    let certificate = try Certificate(derEncoded: der)
                    if let rsa = _RSA.Signing.PublicKey(certificate.publicKey), rsa.keySizeInBits < 2048 {
                        problems.error(
                            .weakKey, certificatePath,
                            "the certificate's RSA key has \(rsa.keySizeInBits) bits; at least 2048 are required")
                    }
                    if let other = owners[der] {
                        problems.error(
                            .duplicateCertificate, certificatePath,
                            "the same certificate as user \(other): each user needs their own")
                    } else {
                        owners[der] = name
                    }
                } catch CryptoKitError.incorrectParameterSize {
                    problems.error(
                        .weakKey, certificatePath,
                        "the certificate's RSA key is smaller than 2048 bits; use a key of at least 2048 bits")
                } catch {
                    let shown = user.certificate.count > 40 ? "\(user.certificate.prefix(40))…" : user.certificate
                    problems.error(
                        .invalidCertificate, certificatePath,
                        "not a PEM X.509 certificate (got \"\(shown.replacingOccurrences(of: "\n", with: "\\n"))\"): paste the user's certificate, -----BEGIN CERTIFICATE----- included"
                    )
                }
            }
            for (index, role) in user.roles.enumerated() where manifest.roles[role] == nil && !unreadable("Roles", role)
            {
                problems.error(
                    .unknownReference, path.appending("Roles").appending(index: index),
                    "no role named \"\(role.prefix(60))\" in Roles\(hint(role, Array(manifest.roles.keys)))")
            }
        }
    }

    mutating func checkRoles() {
        let root = JSONPath.root.appending("Roles")
        for (name, role) in manifest.roles.sorted(by: { $0.key < $1.key }) {
            let path = root.appending(name)
            let allowedActions: [String]
            switch role.resourceType {
            case "Packages": allowedActions = [ManifestVocabulary.updateSecurityVersion]
            case "Secrets": allowedActions = [ManifestVocabulary.readSecret, ManifestVocabulary.writeSecret]
            case "Manifest": allowedActions = [ManifestVocabulary.updateManifest]
            default:
                problems.error(
                    .invalidValue, path.appending("ResourceType"),
                    "unknown resource type \"\(role.resourceType.prefix(60))\"\(hint(role.resourceType, ManifestVocabulary.resourceTypes, listAll: true))"
                )
                continue
            }
            if role.actions.isEmpty {
                problems.warning(.missingField, path.appending("Actions"), "the role grants nothing: Actions is empty")
            }
            var canRead = false
            var canWrite = false
            for (index, action) in role.actions.enumerated() {
                guard let canonical = allowedActions.first(where: { $0.lowercased() == action.lowercased() }) else {
                    problems.error(
                        .invalidValue, path.appending("Actions").appending(index: index),
                        "\"\(action.prefix(60))\" is not an action on \(role.resourceType); allowed: \(allowedActions.joined(separator: ", "))"
                    )
                    continue
                }
                canRead = canRead || canonical == ManifestVocabulary.readSecret
                canWrite = canWrite || canonical == ManifestVocabulary.writeSecret
            }
            let namesPath = path.appending("ResourceNames")
            switch role.resourceType {
            case "Manifest":
                if !role.resourceNames.isEmpty {
                    problems.error(
                        .invalidValue, namesPath, "a Manifest role applies to the whole manifest: remove ResourceNames")
                }
            case "Packages":
                for (index, resource) in role.resourceNames.enumerated()
                where manifest.packages[resource] == nil && !unreadable("Packages", resource) {
                    problems.error(
                        .unknownReference, namesPath.appending(index: index),
                        "no package named \"\(resource.prefix(60))\"\(hint(resource, Array(manifest.packages.keys)))")
                }
            default:
                for (index, resource) in role.resourceNames.enumerated() {
                    guard let secret = manifest.secrets[resource] else {
                        if unreadable("Secrets", resource) { continue }
                        problems.error(
                            .unknownReference, namesPath.appending(index: index),
                            "no secret named \"\(resource.prefix(60))\"\(hint(resource, Array(manifest.secrets.keys)))")
                        continue
                    }
                    if canRead && !secret.shared && !secret.userDefined {
                        problems.error(
                            .permission, namesPath.appending(index: index),
                            "\(resource) is a per-marble secret (neither Shared nor UserDefined) and cannot be read by users"
                        )
                    }
                    // MarbleRun rejects this, yet its own sample manifest does it; the write is refused at run time.
                    if canWrite && !secret.userDefined {
                        problems.warning(
                            .permission, namesPath.appending(index: index),
                            "WriteSecret has no effect on \(resource): only UserDefined secrets can be written")
                    }
                }
            }
        }
    }

    // MARK: TLS

    mutating func checkTLS() {
        let root = JSONPath.root.appending("TLS")
        for (name, tag) in manifest.tls.sorted(by: { $0.key < $1.key }) {
            let path = root.appending(name)
            for (index, entry) in tag.incoming.enumerated() {
                let entryPath = path.appending("Incoming").appending(index: index)
                checkPort(entry.port, at: entryPath.appending("Port"))
                if !entry.addr.isEmpty {
                    problems.warning(
                        .ignoredField, entryPath.appending("Addr"), "Addr is ignored for incoming connections")
                }
                if !entry.cert.isEmpty {
                    if let secret = manifest.secrets[entry.cert] {
                        if !ManifestVocabulary.certificateSecretTypes.contains(secret.type) {
                            problems.error(
                                .invalidValue, entryPath.appending("Cert"),
                                "\(entry.cert) is a \(secret.type) secret, not a certificate")
                        }
                    } else if !unreadable("Secrets", entry.cert) {
                        problems.error(
                            .unknownReference, entryPath.appending("Cert"),
                            "no secret named \"\(entry.cert.prefix(60))\"\(hint(entry.cert, Array(manifest.secrets.keys)))"
                        )
                    }
                    if !entry.disableClientAuth {
                        problems.error(
                            .conflictingFields, entryPath.appending("DisableClientAuth"),
                            "an incoming entry with its own Cert must set DisableClientAuth: clients cannot present a cluster certificate it trusts"
                        )
                    }
                } else if entry.disableClientAuth {
                    problems.error(
                        .conflictingFields, entryPath.appending("DisableClientAuth"),
                        "client authentication can only be disabled together with a Cert secret")
                }
            }
            for (index, entry) in tag.outgoing.enumerated() {
                let entryPath = path.appending("Outgoing").appending(index: index)
                if entry.addr.isEmpty {
                    problems.error(
                        .missingField, entryPath.appending("Addr"), "an outgoing entry needs the Addr it connects to")
                }
                checkPort(entry.port, at: entryPath.appending("Port"))
            }
        }
    }

    mutating func checkPort(_ port: String, at path: JSONPath) {
        if port.isEmpty {
            problems.error(.missingField, path, "a port is required, as a string such as \"8443\"")
        } else if !(port.allSatisfy { $0.isASCII && $0.isNumber }) || port.count > 5
            || Int(port).map({ $0 < 1 || $0 > 65535 }) ?? true
        {
            problems.error(.invalidValue, path, "\"\(port.prefix(20))\" is not a port number from 1 to 65535")
        }
    }

    // MARK: Recovery and config

    mutating func checkRecoveryKeys() {
        let root = JSONPath.root.appending("RecoveryKeys")
        for (name, pem) in manifest.recoveryKeys.sorted(by: { $0.key < $1.key }) {
            let path = root.appending(name)
            if (try? _RSA.Encryption.PublicKey(pemRepresentation: pem)) != nil { continue }
            if let weak = try? _RSA.Encryption.PublicKey(unsafePEMRepresentation: pem) {
                problems.error(
                    .weakKey, path, "the recovery key has \(weak.keySizeInBits) bits; at least 2048 are required")
            } else {
                problems.error(
                    .invalidKey, path, "not a PEM RSA public key (-----BEGIN PUBLIC KEY-----) of at least 2048 bits")
            }
        }
    }

    mutating func checkConfig() {
        let root = JSONPath.root.appending("Config")
        let config = manifest.config
        if !ManifestVocabulary.sealModes.contains(config.sealMode) {
            problems.error(
                .invalidValue, root.appending("SealMode"),
                "unknown seal mode \"\(config.sealMode.prefix(60))\"; use ProductKey (default), UniqueKey or Disabled\(hint(config.sealMode, ManifestVocabulary.sealModes))"
            )
        }
        if config.sealMode == "Disabled", manifest.recoveryKeys.isEmpty {
            problems.warning(
                .missingSection, root.appending("SealMode"),
                "SealMode Disabled keeps no sealed key: without RecoveryKeys (or a running replica to hand the key over) the state cannot be opened after a restart"
            )
        }
        for (index, gate) in config.featureGates.enumerated() where !ManifestVocabulary.featureGates.contains(gate) {
            problems.error(
                .invalidValue, root.appending("FeatureGates").appending(index: index),
                "unknown feature gate \"\(gate.prefix(60))\"\(hint(gate, ManifestVocabulary.featureGates, listAll: true))"
            )
        }
        let updaters = manifest.users.values.filter { user in
            user.roles.contains { roleName in
                guard let role = manifest.roles[roleName], role.resourceType == "Manifest" else { return false }
                return role.actions.contains { $0.lowercased() == ManifestVocabulary.updateManifest.lowercased() }
            }
        }.count
        if config.updateThreshold > UInt64(updaters) {
            problems.error(
                .threshold, root.appending("UpdateThreshold"),
                "\(config.updateThreshold) acknowledgements can never be reached: only \(updaters) user(s) have UpdateManifest"
            )
        }
        let keys = UInt64(manifest.recoveryKeys.count)
        if config.recoveryThreshold == 1 {
            problems.error(
                .threshold, root.appending("RecoveryThreshold"),
                "a threshold of 1 is not a threshold: use 0 (all keys) or 2 or more")
        } else if config.recoveryThreshold > keys {
            problems.error(
                .threshold, root.appending("RecoveryThreshold"),
                "\(config.recoveryThreshold) shares can never be collected: there are \(keys) recovery key(s)")
        }
    }

    // MARK: Hints

    func hint(_ word: String, _ candidates: [String], listAll: Bool = false) -> String {
        if let match = ClosestMatch.find(word, in: candidates), match != word { return "; did you mean \"\(match)\"?" }
        if listAll || (!candidates.isEmpty && candidates.count <= 8) {
            return "; defined: \(candidates.sorted().filter { !$0.isEmpty }.joined(separator: ", "))"
        }
        return ""
    }
}
