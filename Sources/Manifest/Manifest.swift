/// A MarbleRun manifest: which code may run, with which parameters and secrets, and who may
/// change what. Field names and JSON shape are MarbleRun's (compat §4).
///
/// Build one with ``ManifestDocument/parse(_:options:)``, which also validates it.
public struct Manifest: Sendable, Hashable {
    public var packages: [String: Package] = [:]
    public var infrastructures: [String: Infrastructure] = [:]
    public var marbles: [String: Marble] = [:]
    public var users: [String: User] = [:]
    public var secrets: [String: Secret] = [:]
    /// Name → PEM RSA public key.
    public var recoveryKeys: [String: String] = [:]
    public var roles: [String: Role] = [:]
    public var tls: [String: TLSTag] = [:]
    public var config = Config()

    public init() {}

    /// An enclave package: the identity a marble's quote must show.
    public struct Package: Sendable, Hashable {
        public var debug = false
        /// MRENCLAVE, 64 hex digits.
        public var uniqueID: String?
        /// MRSIGNER, 64 hex digits.
        public var signerID: String?
        /// ISVPRODID.
        public var productID: UInt64?
        /// ISVSVN: the lowest accepted security version.
        public var securityVersion: UInt64?
        public var acceptedTCBStatuses: [String]?
        public var acceptedAdvisories: [String]?
        /// A TDX trust domain's measurements, hex (a package is SGX or TDX, never both).
        public var tdx = TDX()

        public init() {}

        /// The measurements a TDX package names; each one given must match the quote's.
        public struct TDX: Sendable, Hashable {
            /// MRTD: the TD's build-time measurement, 96 hex digits.
            public var mrTD: String?
            /// RTMR0–RTMR3, 96 hex digits each, by index.
            public var rtmrs: [Int: String] = [:]
            /// MRSEAM: the TDX module's measurement, 96 hex digits.
            public var mrSeam: String?
            /// TDATTRIBUTES and XFAM, 16 hex digits each.
            public var tdAttributes: String?
            public var xfam: String?

            public init() {}

            public var isEmpty: Bool {
                mrTD == nil && rtmrs.isEmpty && mrSeam == nil && tdAttributes == nil && xfam == nil
            }

            public static let fields = ["MRTD", "RTMR0", "RTMR1", "RTMR2", "RTMR3", "MRSEAM", "TDAttributes", "XFAM"]
        }

        /// Whether the package names TDX measurements (a TDX package).
        public var isTDX: Bool { !tdx.isEmpty }
    }

    /// MarbleRun's (unused there too) infrastructure properties of a quote.
    public struct Infrastructure: Sendable, Hashable {
        public var cpuSVN: [UInt8]?
        public var qeSVN: UInt64?
        public var pceSVN: UInt64?
        public var rootCA: [UInt8]?

        public init() {}
    }

    public struct Marble: Sendable, Hashable {
        public var package = ""
        /// 0 means unlimited.
        public var maxActivations: UInt64 = 0
        public var parameters = Parameters()
        /// Names of ``Manifest/tls`` tags.
        public var tls: [String] = []
        public var disableSecretBinding = false

        public init() {}
    }

    /// Files, environment and argv handed to a marble, rendered from templates.
    public struct Parameters: Sendable, Hashable {
        public var files: [String: ParameterValue] = [:]
        public var env: [String: ParameterValue] = [:]
        /// nil when the manifest gives none: the marble keeps its own argv.
        public var argv: [String]?

        public init() {}
    }

    /// A File or Env value: a string, or `{Data, Encoding, NoTemplates}`.
    public struct ParameterValue: Sendable, Hashable {
        public enum Encoding: String, Sendable, Hashable, CaseIterable {
            case string
            case base64
            case hex
        }

        /// The data after decoding ``encoding``: template text unless ``noTemplates``.
        public var data: [UInt8]
        /// How ``data`` was written in the manifest.
        public var encoding: Encoding
        public var noTemplates: Bool
        /// Written as a bare string rather than an object.
        public var isShortForm: Bool

        public init(data: [UInt8], encoding: Encoding = .string, noTemplates: Bool = false, isShortForm: Bool = false) {
            self.data = data
            self.encoding = encoding
            self.noTemplates = noTemplates
            self.isShortForm = isShortForm
        }

        /// A short-form string value.
        public init(_ text: String) {
            self.init(data: Array(text.utf8), isShortForm: true)
        }
    }

    public struct User: Sendable, Hashable {
        /// PEM certificate the user authenticates with.
        public var certificate = ""
        public var roles: [String] = []

        public init() {}
    }

    public struct Role: Sendable, Hashable {
        /// Packages, Secrets or Manifest.
        public var resourceType = ""
        public var resourceNames: [String] = []
        /// UpdateSecurityVersion, ReadSecret, WriteSecret, UpdateManifest (case-insensitive).
        public var actions: [String] = []

        public init() {}
    }

    public struct Secret: Sendable, Hashable {
        public var type = ""
        /// Key size in bits; meaning depends on ``type``.
        public var size: UInt64?
        public var shared = false
        public var userDefined = false
        public var cert: CertificateTemplate?
        /// Certificate validity in days (default 365); excludes `Cert.NotAfter`.
        public var validFor: UInt64?
        public var privateKey: [UInt8]?
        public var publicKey: [UInt8]?

        public init() {}
    }

    /// The parts of Go's `x509.Certificate` a manifest may set for a generated certificate.
    public struct CertificateTemplate: Sendable, Hashable {
        public var subject: DistinguishedName?
        /// Decimal serial number as written.
        public var serialNumber: String?
        /// RFC 3339 times as written.
        public var notBefore: String?
        public var notAfter: String?
        /// Go's `x509.KeyUsage` bit set.
        public var keyUsage: UInt64?
        /// Go's `x509.ExtKeyUsage` values.
        public var extKeyUsage: [UInt64]?
        public var basicConstraintsValid: Bool?
        public var isCA: Bool?
        public var maxPathLen: Int64?
        public var maxPathLenZero: Bool?
        public var dnsNames: [String]?
        public var emailAddresses: [String]?
        public var ipAddresses: [String]?
        public var ocspServer: [String]?
        public var issuingCertificateURL: [String]?
        public var crlDistributionPoints: [String]?
        public var permittedDNSDomainsCritical: Bool?
        public var permittedDNSDomains: [String]?
        public var excludedDNSDomains: [String]?

        public init() {}
    }

    /// Go's `pkix.Name` as JSON.
    public struct DistinguishedName: Sendable, Hashable {
        public var country: [String]?
        public var organization: [String]?
        public var organizationalUnit: [String]?
        public var locality: [String]?
        public var province: [String]?
        public var streetAddress: [String]?
        public var postalCode: [String]?
        public var serialNumber: String?
        public var commonName: String?

        public init() {}
    }

    /// Connections of a marble that are elevated to TLS.
    public struct TLSTag: Sendable, Hashable {
        public var outgoing: [TLSEntry] = []
        public var incoming: [TLSEntry] = []

        public init() {}
    }

    public struct TLSEntry: Sendable, Hashable {
        public var port = ""
        public var addr = ""
        /// Name of a certificate secret used instead of the marble certificate.
        public var cert = ""
        public var disableClientAuth = false

        public init() {}
    }

    public struct Config: Sendable, Hashable {
        /// "", ProductKey, UniqueKey or Disabled.
        public var sealMode = ""
        public var featureGates: [String] = []
        /// Acknowledgements a full update needs (0 = every user allowed to update).
        public var updateThreshold: UInt64 = 0
        /// Recovery shares needed (0 = all keys).
        public var recoveryThreshold: UInt64 = 0
        public var rotateRootSecret = false

        public init() {}
    }
}

/// Names MarbleRun gives to values of manifest fields.
public enum ManifestVocabulary {
    public static let secretTypes = ["symmetric-key", "cert-rsa", "cert-ecdsa", "cert-ed25519", "plain"]
    public static let certificateSecretTypes: Set<String> = ["cert-rsa", "cert-ecdsa", "cert-ed25519"]
    public static let resourceTypes = ["Packages", "Secrets", "Manifest"]
    public static let sealModes = ["", "ProductKey", "UniqueKey", "Disabled"]
    public static let featureGates = ["SignQuoteEndpoint", "MonotonicCounter"]
    public static let tcbStatuses = [
        "UpToDate", "SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded",
        "OutOfDate", "OutOfDateConfigurationNeeded", "Revoked",
    ]
    public static let updateSecurityVersion = "UpdateSecurityVersion"
    public static let readSecret = "ReadSecret"
    public static let writeSecret = "WriteSecret"
    public static let updateManifest = "UpdateManifest"
    public static let ecdsaSizes: [UInt64] = [224, 256, 384, 521]
}
