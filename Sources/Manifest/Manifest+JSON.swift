import Foundation
import JSONText

extension Manifest {
    /// The manifest as JSON in MarbleRun's shape. Reading it back gives an equal ``Manifest``;
    /// absent optional fields and empty sections are left out.
    public var jsonValue: JSONValue {
        var members: [JSONMember] = []
        func section<T>(_ key: String, _ entries: [String: T], _ encode: (T) -> JSONValue) {
            guard !entries.isEmpty else { return }
            members.append(
                JSONMember(
                    key, .object(entries.sorted { $0.key < $1.key }.map { JSONMember($0.key, encode($0.value)) })))
        }
        section("Packages", packages) { $0.jsonValue }
        section("Infrastructures", infrastructures) { $0.jsonValue }
        section("Marbles", marbles) { $0.jsonValue }
        section("Users", users) { $0.jsonValue }
        section("Secrets", secrets) { $0.jsonValue }
        section("RecoveryKeys", recoveryKeys) { .string($0) }
        section("Roles", roles) { $0.jsonValue }
        section("TLS", tls) { $0.jsonValue }
        if config != Config() { members.append(JSONMember("Config", config.jsonValue)) }
        return .object(members)
    }
}

/// Builds JSON objects field by field, leaving out absent values.
private struct ObjectBuilder {
    var members: [JSONMember] = []

    mutating func add(_ key: String, _ value: JSONValue?) {
        if let value { members.append(JSONMember(key, value)) }
    }

    mutating func add(_ key: String, _ value: String?) { add(key, value.map(JSONValue.string)) }
    mutating func add(_ key: String, _ value: Bool?) { add(key, value.map(JSONValue.bool)) }
    mutating func add(_ key: String, _ value: UInt64?) { add(key, value.map { JSONValue.number(String($0)) }) }
    mutating func add(_ key: String, _ value: Int64?) { add(key, value.map { JSONValue.number(String($0)) }) }
    mutating func add(_ key: String, _ value: [String]?) {
        add(key, value.map { JSONValue.array($0.map(JSONValue.string)) })
    }
    mutating func add(_ key: String, bytes: [UInt8]?) {
        add(key, bytes.map { JSONValue.string(Data($0).base64EncodedString()) })
    }

    var value: JSONValue { .object(members) }
}

extension Manifest.Package {
    var jsonValue: JSONValue {
        var object = ObjectBuilder()
        object.add("Debug", debug)
        object.add("UniqueID", uniqueID)
        object.add("SignerID", signerID)
        object.add("ProductID", productID)
        object.add("SecurityVersion", securityVersion)
        object.add("AcceptedTCBStatuses", acceptedTCBStatuses)
        object.add("AcceptedAdvisories", acceptedAdvisories)
        object.add("MRTD", tdx.mrTD)
        for index in 0..<4 { object.add("RTMR\(index)", tdx.rtmrs[index]) }
        object.add("MRSEAM", tdx.mrSeam)
        object.add("TDAttributes", tdx.tdAttributes)
        object.add("XFAM", tdx.xfam)
        return object.value
    }
}

extension Manifest.Infrastructure {
    var jsonValue: JSONValue {
        var object = ObjectBuilder()
        object.add("CPUSVN", bytes: cpuSVN)
        object.add("QESVN", qeSVN)
        object.add("PCESVN", pceSVN)
        object.add("RootCA", bytes: rootCA)
        return object.value
    }
}

extension Manifest.Marble {
    var jsonValue: JSONValue {
        var object = ObjectBuilder()
        object.add("Package", package)
        object.add("MaxActivations", maxActivations)
        var parameterMembers = ObjectBuilder()
        if !parameters.files.isEmpty {
            parameterMembers.add(
                "Files",
                JSONValue.object(
                    parameters.files.sorted { $0.key < $1.key }.map { JSONMember($0.key, $0.value.jsonValue) }))
        }
        if !parameters.env.isEmpty {
            parameterMembers.add(
                "Env",
                JSONValue.object(
                    parameters.env.sorted { $0.key < $1.key }.map { JSONMember($0.key, $0.value.jsonValue) }))
        }
        parameterMembers.add("Argv", parameters.argv)
        if !parameterMembers.members.isEmpty { object.add("Parameters", parameterMembers.value) }
        if !tls.isEmpty { object.add("TLS", tls) }
        if disableSecretBinding { object.add("DisableSecretBinding", true) }
        return object.value
    }
}

extension Manifest.ParameterValue {
    var jsonValue: JSONValue {
        let text: String
        switch encoding {
        case .string:
            guard let utf8 = String(validating: data, as: UTF8.self) else {
                // Binary data cannot be a JSON string: write it as base64 instead.
                return Manifest.ParameterValue(data: data, encoding: .base64, noTemplates: noTemplates).jsonValue
            }
            if isShortForm && !noTemplates { return .string(utf8) }
            text = utf8
        case .base64: text = Data(data).base64EncodedString()
        case .hex: text = HexString.encode(data)
        }
        return .object([
            JSONMember("Data", .string(text)), JSONMember("Encoding", .string(encoding.rawValue)),
            JSONMember("NoTemplates", .bool(noTemplates)),
        ])
    }
}

extension Manifest.User {
    var jsonValue: JSONValue {
        var object = ObjectBuilder()
        object.add("Certificate", certificate)
        object.add("Roles", roles)
        return object.value
    }
}

extension Manifest.Role {
    var jsonValue: JSONValue {
        var object = ObjectBuilder()
        object.add("ResourceType", resourceType)
        object.add("ResourceNames", resourceNames)
        object.add("Actions", actions)
        return object.value
    }
}

extension Manifest.Secret {
    var jsonValue: JSONValue {
        var object = ObjectBuilder()
        object.add("Type", type)
        object.add("Size", size)
        if shared { object.add("Shared", true) }
        if userDefined { object.add("UserDefined", true) }
        object.add("Cert", cert?.jsonValue)
        object.add("ValidFor", validFor)
        object.add("Private", bytes: privateKey)
        object.add("Public", bytes: publicKey)
        return object.value
    }
}

extension Manifest.CertificateTemplate {
    var jsonValue: JSONValue {
        var object = ObjectBuilder()
        object.add("Subject", subject?.jsonValue)
        object.add("SerialNumber", serialNumber.map(JSONValue.number))
        object.add("NotBefore", notBefore)
        object.add("NotAfter", notAfter)
        object.add("KeyUsage", keyUsage)
        object.add("ExtKeyUsage", extKeyUsage.map { JSONValue.array($0.map { .number(String($0)) }) })
        object.add("BasicConstraintsValid", basicConstraintsValid)
        object.add("IsCA", isCA)
        object.add("MaxPathLen", maxPathLen)
        object.add("MaxPathLenZero", maxPathLenZero)
        object.add("DNSNames", dnsNames)
        object.add("EmailAddresses", emailAddresses)
        object.add("IPAddresses", ipAddresses)
        object.add("OCSPServer", ocspServer)
        object.add("IssuingCertificateURL", issuingCertificateURL)
        object.add("CRLDistributionPoints", crlDistributionPoints)
        object.add("PermittedDNSDomainsCritical", permittedDNSDomainsCritical)
        object.add("PermittedDNSDomains", permittedDNSDomains)
        object.add("ExcludedDNSDomains", excludedDNSDomains)
        return object.value
    }
}

extension Manifest.DistinguishedName {
    var jsonValue: JSONValue {
        var object = ObjectBuilder()
        object.add("Country", country)
        object.add("Organization", organization)
        object.add("OrganizationalUnit", organizationalUnit)
        object.add("Locality", locality)
        object.add("Province", province)
        object.add("StreetAddress", streetAddress)
        object.add("PostalCode", postalCode)
        object.add("SerialNumber", serialNumber)
        object.add("CommonName", commonName)
        return object.value
    }
}

extension Manifest.TLSTag {
    var jsonValue: JSONValue {
        .object([
            JSONMember("Outgoing", .array(outgoing.map(\.jsonValue))),
            JSONMember("Incoming", .array(incoming.map(\.jsonValue))),
        ])
    }
}

extension Manifest.TLSEntry {
    var jsonValue: JSONValue {
        var object = ObjectBuilder()
        object.add("Port", port)
        if !addr.isEmpty { object.add("Addr", addr) }
        if !cert.isEmpty { object.add("Cert", cert) }
        if disableClientAuth { object.add("DisableClientAuth", true) }
        return object.value
    }
}

extension Manifest.Config {
    var jsonValue: JSONValue {
        var object = ObjectBuilder()
        if !sealMode.isEmpty { object.add("SealMode", sealMode) }
        if !featureGates.isEmpty { object.add("FeatureGates", featureGates) }
        if updateThreshold != 0 { object.add("UpdateThreshold", updateThreshold) }
        if recoveryThreshold != 0 { object.add("RecoveryThreshold", recoveryThreshold) }
        if rotateRootSecret { object.add("RotateRootSecret", true) }
        return object.value
    }
}
