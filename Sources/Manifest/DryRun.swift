/// Stand-in secrets for rendering every template once when a manifest is checked, as MarbleRun
/// does before it accepts a manifest. Each has the parts its type really has, so
/// `{{ pem .Secrets.key.Cert }}` on a symmetric key fails here and not at a marble's activation.
public enum DryRun {
    /// Stand-ins for every secret of `manifest`, with `actual` values where given (a user's new
    /// secret checked against every template before it is accepted).
    public static func values(
        for manifest: Manifest, actual: [String: TemplateValues.Secret] = [:]
    ) -> TemplateValues {
        var secrets: [String: TemplateValues.Secret] = [:]
        for (name, secret) in manifest.secrets {
            secrets[name] = actual[name] ?? standIn(for: secret)
        }
        let certificate = TemplateValues.Secret(type: "cert-ecdsa", cert: [0x41])
        let marbleRun: [String: TemplateValues.Secret] = [
            "RootCA": certificate,
            "MarbleCert": TemplateValues.Secret(
                type: "cert-ecdsa", cert: [0x41], privateKey: [0x41], publicKey: [0x41]),
            "CoordinatorRoot": certificate,
            "CoordinatorIntermediate": certificate,
        ]
        return TemplateValues(secrets: secrets, previousSecrets: secrets, marbleRun: marbleRun)
    }

    private static func standIn(for secret: Manifest.Secret) -> TemplateValues.Secret {
        let filler: [UInt8] = [0x41]
        switch secret.type {
        case "symmetric-key":
            let key = [UInt8](repeating: 0x41, count: max(1, Int(min(secret.size ?? 128, 8192) / 8)))
            return TemplateValues.Secret(type: secret.type, privateKey: key, publicKey: key)
        case "cert-rsa", "cert-ecdsa", "cert-ed25519":
            return TemplateValues.Secret(type: secret.type, cert: filler, privateKey: filler, publicKey: filler)
        default:
            return TemplateValues.Secret(type: secret.type, privateKey: filler, publicKey: filler)
        }
    }
}
