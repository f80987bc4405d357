import Foundation
import JSONText

/// Reads a ``JSONValue`` into a ``Manifest`` the way Go's `encoding/json` reads MarbleRun's
/// structs (keys matched case-insensitively, `null` = absent, later duplicates win), but reports
/// every mismatch with its path instead of stopping at the first or ignoring it.
struct ManifestDecoder {
    /// Unknown fields are errors instead of warnings.
    var strict: Bool
    var problems = ProblemList()
    /// Section → names of entries that were present but unreadable (`*`: the whole section).
    var undecodable: [String: Set<String>] = [:]

    init(strict: Bool) {
        self.strict = strict
    }

    private typealias Fields = [String: (value: JSONValue, path: JSONPath)]

    static let manifestFields = [
        "Packages", "Infrastructures", "Marbles", "Users", "Secrets", "RecoveryKeys", "Roles", "TLS", "Config",
    ]
    static let packageFields = [
        "Debug", "UniqueID", "SignerID", "ProductID", "SecurityVersion", "AcceptedTCBStatuses", "AcceptedAdvisories",
        "MRTD", "RTMR0", "RTMR1", "RTMR2", "RTMR3", "MRSEAM", "TDAttributes", "XFAM",
    ]
    static let infrastructureFields = ["CPUSVN", "QESVN", "PCESVN", "RootCA"]
    static let marbleFields = ["Package", "MaxActivations", "Parameters", "TLS", "DisableSecretBinding"]
    static let parametersFields = ["Files", "Env", "Argv"]
    static let parameterValueFields = ["Data", "Encoding", "NoTemplates"]
    static let userFields = ["Certificate", "Roles"]
    static let roleFields = ["ResourceType", "ResourceNames", "Actions"]
    static let secretFields = ["Type", "Size", "Shared", "UserDefined", "Cert", "ValidFor", "Private", "Public"]
    static let certificateFields = [
        "Subject", "SerialNumber", "NotBefore", "NotAfter", "KeyUsage", "ExtKeyUsage", "BasicConstraintsValid", "IsCA",
        "MaxPathLen", "MaxPathLenZero", "DNSNames", "EmailAddresses", "IPAddresses", "OCSPServer",
        "IssuingCertificateURL", "CRLDistributionPoints", "PermittedDNSDomainsCritical", "PermittedDNSDomains",
        "ExcludedDNSDomains",
    ]
    /// Fields of Go's `x509.Certificate` that MarbleRun would read but this Coordinator does not use.
    static let unsupportedCertificateFields = [
        "URIs", "SubjectKeyId", "AuthorityKeyId", "ExtraExtensions", "UnknownExtKeyUsage", "PolicyIdentifiers",
        "Policies", "PermittedIPRanges", "ExcludedIPRanges", "PermittedEmailAddresses", "ExcludedEmailAddresses",
        "PermittedURIDomains", "ExcludedURIDomains", "Issuer", "Version", "SignatureAlgorithm", "PublicKeyAlgorithm",
        "Raw", "Signature", "Extensions", "PublicKey",
    ]
    static let nameFields = [
        "Country", "Organization", "OrganizationalUnit", "Locality", "Province", "StreetAddress", "PostalCode",
        "SerialNumber", "CommonName",
    ]
    static let tlsTagFields = ["Outgoing", "Incoming"]
    static let tlsEntryFields = ["Port", "Addr", "Cert", "DisableClientAuth"]
    static let configFields = ["SealMode", "FeatureGates", "UpdateThreshold", "RecoveryThreshold", "RotateRootSecret"]

    mutating func decode(_ value: JSONValue) -> Manifest {
        var manifest = Manifest()
        guard let fields = fields(of: value, at: .root, known: Self.manifestFields) else { return manifest }
        if let (v, p) = fields["Packages"] { manifest.packages = section("Packages", v, p) { $0.package($1, $2) } }
        if let (v, p) = fields["Infrastructures"] {
            manifest.infrastructures = section("Infrastructures", v, p) { $0.infrastructure($1, $2) }
        }
        if let (v, p) = fields["Marbles"] { manifest.marbles = section("Marbles", v, p) { $0.marble($1, $2) } }
        if let (v, p) = fields["Users"] { manifest.users = section("Users", v, p) { $0.user($1, $2) } }
        if let (v, p) = fields["Secrets"] { manifest.secrets = section("Secrets", v, p) { $0.secret($1, $2) } }
        if let (v, p) = fields["RecoveryKeys"] {
            manifest.recoveryKeys = section("RecoveryKeys", v, p) { $0.string($1, $2) }
        }
        if let (v, p) = fields["Roles"] { manifest.roles = section("Roles", v, p) { $0.role($1, $2) } }
        if let (v, p) = fields["TLS"] { manifest.tls = section("TLS", v, p) { $0.tlsTag($1, $2) } }
        if let (v, p) = fields["Config"] { manifest.config = config(v, p) ?? Manifest.Config() }
        return manifest
    }

    // MARK: Sections

    /// A top-level map section, remembering which entries could not be read.
    private mutating func section<T>(
        _ name: String, _ value: JSONValue, _ path: JSONPath, _ element: (inout Self, JSONValue, JSONPath) -> T?
    ) -> [String: T] {
        switch value {
        case .object(let members):
            let entries = map(value, path, element)
            let missing = members.map(\.key).filter { entries[$0] == nil }
            if !missing.isEmpty { undecodable[name, default: []].formUnion(missing) }
            return entries
        case .null:
            return [:]
        default:
            undecodable[name] = ["*"]
            return map(value, path, element)
        }
    }

    private mutating func package(_ value: JSONValue, _ path: JSONPath) -> Manifest.Package? {
        guard let f = fields(of: value, at: path, known: Self.packageFields) else { return nil }
        var package = Manifest.Package()
        package.debug = bool(f["Debug"]) ?? false
        package.uniqueID = string(f["UniqueID"])
        package.signerID = string(f["SignerID"])
        package.productID = unsigned(f["ProductID"])
        package.securityVersion = unsigned(f["SecurityVersion"])
        package.acceptedTCBStatuses = stringArray(f["AcceptedTCBStatuses"])
        package.acceptedAdvisories = stringArray(f["AcceptedAdvisories"])
        package.tdx.mrTD = string(f["MRTD"])
        for index in 0..<4 {
            if let value = string(f["RTMR\(index)"]) { package.tdx.rtmrs[index] = value }
        }
        package.tdx.mrSeam = string(f["MRSEAM"])
        package.tdx.tdAttributes = string(f["TDAttributes"])
        package.tdx.xfam = string(f["XFAM"])
        return package
    }

    private mutating func infrastructure(_ value: JSONValue, _ path: JSONPath) -> Manifest.Infrastructure? {
        guard let f = fields(of: value, at: path, known: Self.infrastructureFields) else { return nil }
        var infrastructure = Manifest.Infrastructure()
        infrastructure.cpuSVN = bytes(f["CPUSVN"])
        infrastructure.qeSVN = unsigned(f["QESVN"], maximum: UInt64(UInt16.max))
        infrastructure.pceSVN = unsigned(f["PCESVN"], maximum: UInt64(UInt16.max))
        infrastructure.rootCA = bytes(f["RootCA"])
        return infrastructure
    }

    private mutating func marble(_ value: JSONValue, _ path: JSONPath) -> Manifest.Marble? {
        guard let f = fields(of: value, at: path, known: Self.marbleFields) else { return nil }
        var marble = Manifest.Marble()
        marble.package = string(f["Package"]) ?? ""
        marble.maxActivations = unsigned(f["MaxActivations"]) ?? 0
        if let (v, p) = f["Parameters"], let parameters = parameters(v, p) { marble.parameters = parameters }
        marble.tls = stringArray(f["TLS"]) ?? []
        marble.disableSecretBinding = bool(f["DisableSecretBinding"]) ?? false
        return marble
    }

    private mutating func parameters(_ value: JSONValue, _ path: JSONPath) -> Manifest.Parameters? {
        guard let f = fields(of: value, at: path, known: Self.parametersFields) else { return nil }
        var parameters = Manifest.Parameters()
        if let (v, p) = f["Files"] { parameters.files = map(v, p) { $0.parameterValue($1, $2) } }
        if let (v, p) = f["Env"] { parameters.env = map(v, p) { $0.parameterValue($1, $2) } }
        parameters.argv = stringArray(f["Argv"])
        return parameters
    }

    private mutating func parameterValue(_ value: JSONValue, _ path: JSONPath) -> Manifest.ParameterValue? {
        if case .string(let text) = value { return Manifest.ParameterValue(text) }
        if case .null = value { return nil }
        guard case .object = value else {
            problems.error(
                .wrongType, path,
                "expected a string or an object {Data, Encoding, NoTemplates}, got \(value.kindDescription)")
            return nil
        }
        guard let f = fields(of: value, at: path, known: Self.parameterValueFields) else { return nil }
        let text = string(f["Data"]) ?? ""
        let noTemplates = bool(f["NoTemplates"]) ?? false
        let encodingName = string(f["Encoding"]) ?? ""
        let encodingPath = f["Encoding"]?.path ?? path.appending("Encoding")
        let encoding: Manifest.ParameterValue.Encoding
        switch encodingName.lowercased() {
        case "", "string": encoding = .string
        case "base64": encoding = .base64
        case "hex": encoding = .hex
        default:
            problems.error(
                .invalidValue, encodingPath,
                "unknown encoding \"\(encodingName.prefix(40))\": use string, base64 or hex")
            return nil
        }
        let dataPath = f["Data"]?.path ?? path.appending("Data")
        switch encoding {
        case .string:
            return Manifest.ParameterValue(data: Array(text.utf8), encoding: .string, noTemplates: noTemplates)
        case .base64:
            guard let data = Data(base64Encoded: text) else {
                problems.error(.invalidValue, dataPath, "Data is not valid standard base64 (Encoding is base64)")
                return nil
            }
            return Manifest.ParameterValue(data: Array(data), encoding: .base64, noTemplates: noTemplates)
        case .hex:
            guard let data = HexString.decode(text) else {
                problems.error(.invalidValue, dataPath, "Data is not an even number of hex digits (Encoding is hex)")
                return nil
            }
            return Manifest.ParameterValue(data: data, encoding: .hex, noTemplates: noTemplates)
        }
    }

    private mutating func user(_ value: JSONValue, _ path: JSONPath) -> Manifest.User? {
        guard let f = fields(of: value, at: path, known: Self.userFields) else { return nil }
        var user = Manifest.User()
        user.certificate = string(f["Certificate"]) ?? ""
        user.roles = stringArray(f["Roles"]) ?? []
        return user
    }

    private mutating func role(_ value: JSONValue, _ path: JSONPath) -> Manifest.Role? {
        guard let f = fields(of: value, at: path, known: Self.roleFields) else { return nil }
        var role = Manifest.Role()
        role.resourceType = string(f["ResourceType"]) ?? ""
        role.resourceNames = stringArray(f["ResourceNames"]) ?? []
        role.actions = stringArray(f["Actions"]) ?? []
        return role
    }

    private mutating func secret(_ value: JSONValue, _ path: JSONPath) -> Manifest.Secret? {
        guard let f = fields(of: value, at: path, known: Self.secretFields) else { return nil }
        var secret = Manifest.Secret()
        secret.type = string(f["Type"]) ?? ""
        secret.size = unsigned(f["Size"])
        secret.shared = bool(f["Shared"]) ?? false
        secret.userDefined = bool(f["UserDefined"]) ?? false
        if let (v, p) = f["Cert"] { secret.cert = certificate(v, p) }
        secret.validFor = unsigned(f["ValidFor"])
        secret.privateKey = bytes(f["Private"])
        secret.publicKey = bytes(f["Public"])
        return secret
    }

    private mutating func certificate(_ value: JSONValue, _ path: JSONPath) -> Manifest.CertificateTemplate? {
        guard
            let f = fields(
                of: value, at: path, known: Self.certificateFields, unsupported: Self.unsupportedCertificateFields)
        else { return nil }
        var cert = Manifest.CertificateTemplate()
        if let (v, p) = f["Subject"] {
            cert.subject = distinguishedName(v, p, parentKnown: Self.certificateFields, parentPath: path)
        }
        if let (v, p) = f["SerialNumber"] {
            if case .number(let literal) = v, !literal.contains(where: { !$0.isNumber }) {
                cert.serialNumber = literal
            } else if case .null = v {
            } else {
                problems.error(.wrongType, p, "expected a positive integer, got \(v.kindDescription)")
            }
        }
        cert.notBefore = string(f["NotBefore"])
        cert.notAfter = string(f["NotAfter"])
        cert.keyUsage = unsigned(f["KeyUsage"])
        cert.extKeyUsage = unsignedArray(f["ExtKeyUsage"])
        cert.basicConstraintsValid = bool(f["BasicConstraintsValid"])
        cert.isCA = bool(f["IsCA"])
        cert.maxPathLen = signed(f["MaxPathLen"])
        cert.maxPathLenZero = bool(f["MaxPathLenZero"])
        cert.dnsNames = stringArray(f["DNSNames"])
        cert.emailAddresses = stringArray(f["EmailAddresses"])
        cert.ipAddresses = stringArray(f["IPAddresses"])
        cert.ocspServer = stringArray(f["OCSPServer"])
        cert.issuingCertificateURL = stringArray(f["IssuingCertificateURL"])
        cert.crlDistributionPoints = stringArray(f["CRLDistributionPoints"])
        cert.permittedDNSDomainsCritical = bool(f["PermittedDNSDomainsCritical"])
        cert.permittedDNSDomains = stringArray(f["PermittedDNSDomains"])
        cert.excludedDNSDomains = stringArray(f["ExcludedDNSDomains"])
        return cert
    }

    private mutating func distinguishedName(
        _ value: JSONValue, _ path: JSONPath, parentKnown: [String], parentPath: JSONPath
    ) -> Manifest.DistinguishedName? {
        guard
            let f = fields(
                of: value, at: path, known: Self.nameFields, parentKnown: parentKnown, parentPath: parentPath)
        else { return nil }
        var name = Manifest.DistinguishedName()
        name.country = stringArray(f["Country"])
        name.organization = stringArray(f["Organization"])
        name.organizationalUnit = stringArray(f["OrganizationalUnit"])
        name.locality = stringArray(f["Locality"])
        name.province = stringArray(f["Province"])
        name.streetAddress = stringArray(f["StreetAddress"])
        name.postalCode = stringArray(f["PostalCode"])
        name.serialNumber = string(f["SerialNumber"])
        name.commonName = string(f["CommonName"])
        return name
    }

    private mutating func tlsTag(_ value: JSONValue, _ path: JSONPath) -> Manifest.TLSTag? {
        guard let f = fields(of: value, at: path, known: Self.tlsTagFields) else { return nil }
        var tag = Manifest.TLSTag()
        if let (v, p) = f["Outgoing"] { tag.outgoing = array(v, p) { $0.tlsEntry($1, $2) } ?? [] }
        if let (v, p) = f["Incoming"] { tag.incoming = array(v, p) { $0.tlsEntry($1, $2) } ?? [] }
        return tag
    }

    private mutating func tlsEntry(_ value: JSONValue, _ path: JSONPath) -> Manifest.TLSEntry? {
        guard let f = fields(of: value, at: path, known: Self.tlsEntryFields) else { return nil }
        var entry = Manifest.TLSEntry()
        entry.port = string(f["Port"]) ?? ""
        entry.addr = string(f["Addr"]) ?? ""
        entry.cert = string(f["Cert"]) ?? ""
        entry.disableClientAuth = bool(f["DisableClientAuth"]) ?? false
        return entry
    }

    private mutating func config(_ value: JSONValue, _ path: JSONPath) -> Manifest.Config? {
        guard let f = fields(of: value, at: path, known: Self.configFields) else { return nil }
        var config = Manifest.Config()
        config.sealMode = string(f["SealMode"]) ?? ""
        config.featureGates = stringArray(f["FeatureGates"]) ?? []
        config.updateThreshold = unsigned(f["UpdateThreshold"]) ?? 0
        config.recoveryThreshold = unsigned(f["RecoveryThreshold"]) ?? 0
        config.rotateRootSecret = bool(f["RotateRootSecret"]) ?? false
        return config
    }

    // MARK: Objects and fields

    /// The members of an object keyed by their canonical field name, reporting unknown,
    /// differently-cased and repeated keys.
    private mutating func fields(
        of value: JSONValue, at path: JSONPath, known: [String], unsupported: [String] = [],
        parentKnown: [String] = [], parentPath: JSONPath = .root
    ) -> Fields? {
        guard case .object(let members) = value else {
            if case .null = value { return nil }
            problems.error(.wrongType, path, "expected an object, got \(value.kindDescription)")
            return nil
        }
        var result: Fields = [:]
        var seen: Set<String> = []
        for member in members {
            let memberPath = path.appending(member.key)
            let canonical: String
            if known.contains(member.key) {
                canonical = member.key
            } else if let match = known.first(where: { $0.lowercased() == member.key.lowercased() }) {
                canonical = match
                problems.warning(
                    .caseMismatch, memberPath,
                    "field names are case-sensitive here; MarbleRun accepts \"\(member.key)\" only because Go ignores case: write \"\(match)\""
                )
            } else {
                reportUnknown(
                    member.key, at: memberPath, known: known, unsupported: unsupported,
                    parentKnown: parentKnown, parentPath: parentPath)
                continue
            }
            if !seen.insert(canonical).inserted {
                problems.warning(
                    .duplicateKey, memberPath, "\"\(canonical)\" is given more than once; the last value is used")
            }
            result[canonical] = (member.value, memberPath)
        }
        return result
    }

    private mutating func reportUnknown(
        _ key: String, at path: JSONPath, known: [String], unsupported: [String], parentKnown: [String],
        parentPath: JSONPath
    ) {
        let shown = key.count > 60 ? "\(key.prefix(60))…" : key
        if unsupported.contains(where: { $0.lowercased() == key.lowercased() }) {
            problems.warning(
                .ignoredField, path,
                "\"\(shown)\" is a Go x509.Certificate field this Coordinator does not apply to generated certificates; it is ignored"
            )
            return
        }
        var message = "unknown field \"\(shown)\"; MarbleRun silently ignores it"
        if let parent = parentKnown.first(where: { $0.lowercased() == key.lowercased() }) {
            message += ". \"\(parent)\" belongs one level up: did you mean \(parentPath.appending(parent))?"
        } else if let suggestion = ClosestMatch.find(key, in: known) {
            message += ". Did you mean \"\(suggestion)\"?"
        } else {
            message += ". Known fields here: \(known.joined(separator: ", "))"
        }
        if strict {
            problems.error(.unknownField, path, message)
        } else {
            problems.warning(.unknownField, path, message)
        }
    }

    private mutating func map<T>(
        _ value: JSONValue, _ path: JSONPath, _ element: (inout Self, JSONValue, JSONPath) -> T?
    ) -> [String: T] {
        guard case .object(let members) = value else {
            if case .null = value { return [:] }
            problems.error(.wrongType, path, "expected an object of named entries, got \(value.kindDescription)")
            return [:]
        }
        var result: [String: T] = [:]
        for member in members {
            let memberPath = path.appending(member.key)
            if result[member.key] != nil {
                problems.warning(
                    .duplicateKey, memberPath,
                    "\"\(member.key)\" is defined more than once; the last definition is used")
            }
            if let decoded = element(&self, member.value, memberPath) {
                result[member.key] = decoded
            } else {
                result[member.key] = nil
            }
        }
        return result
    }

    private mutating func array<T>(
        _ value: JSONValue, _ path: JSONPath, _ element: (inout Self, JSONValue, JSONPath) -> T?
    ) -> [T]? {
        guard case .array(let elements) = value else {
            if case .null = value { return nil }
            problems.error(.wrongType, path, "expected an array, got \(value.kindDescription)")
            return nil
        }
        var result: [T] = []
        for (index, item) in elements.enumerated() {
            if let decoded = element(&self, item, path.appending(index: index)) { result.append(decoded) }
        }
        return result
    }

    // MARK: Scalars

    private mutating func string(_ field: (value: JSONValue, path: JSONPath)?) -> String? {
        guard let field else { return nil }
        return string(field.value, field.path)
    }

    private mutating func string(_ value: JSONValue, _ path: JSONPath) -> String? {
        switch value {
        case .string(let text): return text
        case .null: return nil
        case .number(let literal):
            problems.error(
                .wrongType, path,
                "expected a string, got the number \(literal.prefix(40)): write \"\(literal.prefix(40))\"")
            return nil
        default:
            problems.error(.wrongType, path, "expected a string, got \(value.kindDescription)")
            return nil
        }
    }

    private mutating func bool(_ field: (value: JSONValue, path: JSONPath)?) -> Bool? {
        guard let (value, path) = field else { return nil }
        switch value {
        case .bool(let flag): return flag
        case .null: return nil
        default:
            problems.error(.wrongType, path, "expected true or false, got \(value.kindDescription)")
            return nil
        }
    }

    private mutating func unsigned(_ field: (value: JSONValue, path: JSONPath)?, maximum: UInt64 = .max) -> UInt64? {
        guard let (value, path) = field else { return nil }
        return unsigned(value, path, maximum: maximum)
    }

    private mutating func unsigned(_ value: JSONValue, _ path: JSONPath, maximum: UInt64 = .max) -> UInt64? {
        switch value {
        case .null: return nil
        case .number(let literal):
            if literal.allSatisfy({ $0.isASCII && $0.isNumber }) {
                if let number = UInt64(literal), number <= maximum { return number }
                problems.error(.outOfRange, path, "\(literal.prefix(40)) is larger than \(maximum)")
            } else {
                problems.error(.wrongType, path, "expected a whole number ≥ 0, got \(literal.prefix(40))")
            }
            return nil
        default:
            problems.error(.wrongType, path, "expected a whole number ≥ 0, got \(value.kindDescription)")
            return nil
        }
    }

    private mutating func signed(_ field: (value: JSONValue, path: JSONPath)?) -> Int64? {
        guard let (value, path) = field else { return nil }
        switch value {
        case .null: return nil
        case .number(let literal):
            if let number = Int64(literal) { return number }
            problems.error(.wrongType, path, "expected a whole number, got \(literal.prefix(40))")
            return nil
        default:
            problems.error(.wrongType, path, "expected a whole number, got \(value.kindDescription)")
            return nil
        }
    }

    private mutating func stringArray(_ field: (value: JSONValue, path: JSONPath)?) -> [String]? {
        guard let (value, path) = field else { return nil }
        return array(value, path) { $0.string($1, $2) }
    }

    private mutating func unsignedArray(_ field: (value: JSONValue, path: JSONPath)?) -> [UInt64]? {
        guard let (value, path) = field else { return nil }
        return array(value, path) { $0.unsigned($1, $2) }
    }

    /// Go's `[]byte`: a standard base64 string, or (as Go also accepts) an array of numbers 0–255.
    private mutating func bytes(_ field: (value: JSONValue, path: JSONPath)?) -> [UInt8]? {
        guard let (value, path) = field else { return nil }
        switch value {
        case .null: return nil
        case .string(let text):
            if let data = Data(base64Encoded: text) { return Array(data) }
            problems.error(.invalidValue, path, "expected standard base64 bytes")
            return nil
        case .array:
            return array(value, path) { decoder, element, elementPath in
                decoder.unsigned(element, elementPath, maximum: 255).map { UInt8($0) }
            }
        default:
            problems.error(.wrongType, path, "expected base64 bytes, got \(value.kindDescription)")
            return nil
        }
    }
}

/// Finds the known name closest to a misspelt one, for "did you mean" hints.
enum ClosestMatch {
    static func find(_ word: String, in candidates: [String]) -> String? {
        let lowered = Array(word.lowercased().unicodeScalars)
        guard !lowered.isEmpty, lowered.count <= 64 else { return nil }
        var best: (name: String, distance: Int)?
        for candidate in candidates {
            let distance = editDistance(lowered, Array(candidate.lowercased().unicodeScalars))
            if distance < (best?.distance ?? .max) { best = (candidate, distance) }
        }
        guard let best else { return nil }
        let limit = max(2, min(lowered.count, best.name.count) / 3)
        return best.distance <= limit ? best.name : nil
    }

    static func editDistance(_ a: [Unicode.Scalar], _ b: [Unicode.Scalar]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}

/// Hex text helpers shared by decoding and validation.
enum HexString {
    static func decode(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = value(of: digits[index]), let low = value(of: digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        let table = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            out.append(table[Int(byte >> 4)])
            out.append(table[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func value(of digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return digit - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
