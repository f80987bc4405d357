/// The values a template may place: the marble's secrets, those before the last update, and
/// the Coordinator-provided certificates (`.MarbleRun.*`).
public struct TemplateValues: Sendable {
    /// A secret as a template sees it. Empty parts are absent (a symmetric key has no `Cert`).
    public struct Secret: Sendable, Hashable {
        public var type: String
        /// DER of the certificate.
        public var cert: [UInt8]
        /// PKCS #8 DER, or the key itself for symmetric keys.
        public var privateKey: [UInt8]
        /// PKIX DER, or the key or plain data itself.
        public var publicKey: [UInt8]

        public init(type: String, cert: [UInt8] = [], privateKey: [UInt8] = [], publicKey: [UInt8] = []) {
            self.type = type
            self.cert = cert
            self.privateKey = privateKey
            self.publicKey = publicKey
        }
    }

    public var secrets: [String: Secret]
    public var previousSecrets: [String: Secret]
    /// Keyed by ``TemplateReference/marbleRunNames``.
    public var marbleRun: [String: Secret]

    public init(secrets: [String: Secret], previousSecrets: [String: Secret] = [:], marbleRun: [String: Secret]) {
        self.secrets = secrets
        self.previousSecrets = previousSecrets
        self.marbleRun = marbleRun
    }
}
