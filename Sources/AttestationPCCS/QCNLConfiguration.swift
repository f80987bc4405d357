import Foundation
import JSONText

/// Where verification collateral comes from, as Intel's quote provider library reads it from
/// `/etc/sgx_default_qcnl.conf` (the file SGX deployments, MarbleRun's among them, already
/// have): `collateral_service` if set, else `pccs_url`; `use_secure_cert` (default true) says
/// whether the service's TLS certificate is checked against the system's trust roots.
///
/// The file is JSON with `//` and `/* */` comments and trailing commas allowed, as Intel's
/// samples are written. Unknown members (retry settings, `local_pck_url`, …) are ignored.
public struct QCNLConfiguration: Sendable, Hashable {
    public static let defaultPath = "/etc/sgx_default_qcnl.conf"
    /// Intel's Provisioning Certification Service, API v4.
    public static let intelPCS = "https://api.trustedservices.intel.com"
    /// The root CA CRL for a service without a `rootcacrl` endpoint (Intel's PCS): the root
    /// certificate's CRL distribution point.
    public static let intelRootCACRL = "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"
    /// Larger files are refused (Intel's are about 2 KiB).
    static let maximumSize = 64 << 10

    /// The service collateral is fetched from (a PCCS or Intel's PCS).
    public var collateralURL: String
    /// Check the service's TLS certificate (false: any certificate; the collateral is signed
    /// by Intel and verified either way, TLS only protects the transport).
    public var useSecureCert: Bool

    public init(collateralURL: String, useSecureCert: Bool = true) {
        self.collateralURL = collateralURL
        self.useSecureCert = useSecureCert
    }

    /// Intel's PCS with TLS checked: the default when no file says otherwise.
    public static let intel = QCNLConfiguration(collateralURL: intelPCS)

    /// Whether the service is Intel's PCS, whose root CA CRL comes from ``intelRootCACRL``.
    public var isIntelPCS: Bool { collateralURL.hasPrefix(Self.intelPCS) }

    /// The configuration in `bytes`, or an error that says what is wrong and where.
    public static func parse(_ bytes: [UInt8], source: String = defaultPath) throws(QCNLConfigurationError)
        -> QCNLConfiguration
    {
        guard bytes.count <= maximumSize else {
            throw QCNLConfigurationError("\(source) is larger than \(maximumSize) bytes; is it the QCNL configuration?")
        }
        let value: JSONValue
        do {
            value = try JSONParser(maximumDepth: 8).parse(strictJSON(bytes))
        } catch {
            throw QCNLConfigurationError("\(source) is not valid JSON: \(error)")
        }
        guard case .object(let members) = value else {
            throw QCNLConfigurationError("\(source) must hold one JSON object, not \(value.kindDescription)")
        }
        func string(_ key: String) throws(QCNLConfigurationError) -> String? {
            guard let member = members.last(where: { $0.key == key }) else { return nil }
            guard case .string(let text) = member.value else {
                throw QCNLConfigurationError("\(source): \"\(key)\" must be a string (a URL)")
            }
            return try checkedURL(text, what: "\(source): \"\(key)\"")
        }
        var secure = true
        if let member = members.last(where: { $0.key == "use_secure_cert" }) {
            guard case .bool(let flag) = member.value else {
                throw QCNLConfigurationError("\(source): \"use_secure_cert\" must be true or false")
            }
            secure = flag
        }
        // Intel's meaning: collateral from `collateral_service`, which defaults to `pccs_url`.
        let service = try string("collateral_service")
        let pccs = try string("pccs_url")
        guard let url = service ?? pccs else {
            throw QCNLConfigurationError(
                "\(source) names no collateral service: set \"pccs_url\" or \"collateral_service\"")
        }
        return QCNLConfiguration(collateralURL: url, useSecureCert: secure)
    }

    /// `text` trimmed if it is an http(s) URL with a host; nil if it is empty.
    static func checkedURL(_ text: String, what: String) throws(QCNLConfigurationError) -> String? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { return nil }
        guard trimmed.utf8.count <= 2048, let url = URL(string: trimmed), url.scheme == "https" || url.scheme == "http",
            let host = url.host, !host.isEmpty, url.query == nil, url.fragment == nil
        else {
            throw QCNLConfigurationError("\(what) is not an http(s) URL of a service: \(trimmed.prefix(200))")
        }
        return trimmed
    }

    /// The configuration in the file at `path`; nil if there is no such file.
    public static func load(path: String = defaultPath) throws(QCNLConfigurationError) -> QCNLConfiguration? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw QCNLConfigurationError("\(path) cannot be read (permissions?)")
        }
        defer { try? handle.close() }
        let bytes: Data
        do {
            bytes = try handle.read(upToCount: maximumSize + 1) ?? Data()
        } catch {
            throw QCNLConfigurationError("\(path) cannot be read: \(error)")
        }
        return try parse(Array(bytes), source: path)
    }

    /// The service a program uses, from its flags: the file at `path` (which must exist), else
    /// with `defaults` the file at ``defaultPath`` if there is one, else Intel's PCS; `url`
    /// replaces the file's URL (keeping its `use_secure_cert`). Nil when nothing names a service
    /// and `defaults` is false (simulation: the simulated platform's collateral).
    public static func resolve(url: String?, path: String?, defaults: Bool) throws(QCNLConfigurationError)
        -> QCNLConfiguration?
    {
        var file: QCNLConfiguration?
        if let path {
            guard let loaded = try load(path: path) else {
                throw QCNLConfigurationError("the QCNL configuration \(path) does not exist")
            }
            file = loaded
        } else if defaults {
            file = try load()
        }
        guard let url else { return file ?? (defaults ? .intel : nil) }
        guard let checked = try checkedURL(url, what: "the collateral service URL") else {
            throw QCNLConfigurationError("the collateral service URL is empty")
        }
        return QCNLConfiguration(collateralURL: checked, useSecureCert: file?.useSecureCert ?? true)
    }

    /// `bytes` with comments and trailing commas turned into spaces (so error positions stay).
    static func strictJSON(_ bytes: [UInt8]) -> [UInt8] {
        var out = bytes
        var index = 0
        var inString = false
        // The position of a comma that a closing bracket may turn out to trail.
        var pendingComma: Int?
        let slash = UInt8(ascii: "/")
        let star = UInt8(ascii: "*")
        while index < out.count {
            let byte = out[index]
            if inString {
                if byte == UInt8(ascii: "\\") {
                    index += 2
                    continue
                }
                if byte == UInt8(ascii: "\"") { inString = false }
                index += 1
                continue
            }
            if byte == slash, index + 1 < out.count, out[index + 1] == slash {
                while index < out.count, out[index] != UInt8(ascii: "\n") {
                    out[index] = 0x20
                    index += 1
                }
                continue
            }
            if byte == slash, index + 1 < out.count, out[index + 1] == star {
                out[index] = 0x20
                out[index + 1] = 0x20
                index += 2
                while index < out.count, !(out[index] == star && index + 1 < out.count && out[index + 1] == slash) {
                    if out[index] != UInt8(ascii: "\n") { out[index] = 0x20 }
                    index += 1
                }
                // An unterminated comment runs to the end; a terminated one loses its `*/` too.
                for end in index..<min(index + 2, out.count) { out[end] = 0x20 }
                index += 2
                continue
            }
            switch byte {
            case UInt8(ascii: "\""):
                inString = true
                pendingComma = nil
            case UInt8(ascii: ","):
                pendingComma = index
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                if let comma = pendingComma { out[comma] = 0x20 }
                pendingComma = nil
            case 0x20, 0x09, 0x0A, 0x0D:
                break
            default:
                pendingComma = nil
            }
            index += 1
        }
        return out
    }
}

/// A QCNL configuration file that cannot be used, with what to fix.
public struct QCNLConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}
