import Crypto
import Foundation
import JSONText
import Manifest
import SwiftASN1
import X509

/// What issuing a marble's parameters needs, copied out of the Coordinator so that the
/// signing and rendering run in parallel, off the actor.
struct ParameterIssuer: Sendable {
    let pki: CoordinatorPKI
    let marbleCertificateValidity: TimeInterval
    let sharedSecrets: [String: SecretValue]
    /// Values before the last update, for `.Previous.Secrets`; names absent here use the current value.
    let previousSecrets: [String: SecretValue]
    let rootSecret: SymmetricKey
    let marbleRoot: SecretValue
    let coordinatorRoot: SecretValue
    let intermediate: SecretValue
    /// Each marble type's parameters, parsed once per manifest (``ParameterPlan/plans(for:)``);
    /// a type not in it is parsed at its activation.
    let plans: [String: Result<ParameterPlan, CoordinatorError>]

    init(
        pki: CoordinatorPKI, marbleCertificateValidity: TimeInterval, sharedSecrets: [String: SecretValue],
        previousSecrets: [String: SecretValue] = [:], rootSecret: SymmetricKey,
        plans: [String: Result<ParameterPlan, CoordinatorError>] = [:]
    ) throws {
        self.plans = plans
        self.pki = pki
        self.marbleCertificateValidity = marbleCertificateValidity
        self.sharedSecrets = sharedSecrets
        self.previousSecrets = previousSecrets
        self.rootSecret = rootSecret
        marbleRoot = try SecretValue.certificate(pki.marbleRoot, type: "cert-ecdsa", privateKey: [])
        coordinatorRoot = try SecretValue.certificate(pki.root, type: "cert-ecdsa", privateKey: [])
        intermediate = try SecretValue.certificate(pki.intermediate, type: "cert-ecdsa", privateKey: [])
    }

    /// The marble's key, certificate, secrets and rendered parameters.
    func renderParameters(
        marble: Manifest.Marble, manifest: Manifest, marbleType: String, uuid: UUID, csr: CertificateSigningRequest,
        now: Date
    ) throws -> ActivationParameters {
        // The Coordinator makes the marble's key, as MarbleRun does; the CSR only names SANs.
        // Not compact-representable: the key travels as DER, and that form costs retries.
        let marbleKey = P256.Signing.PrivateKey(compactRepresentable: false)
        let certificate = try pki.issueMarbleCertificate(
            publicKey: .init(marbleKey.publicKey), uuid: uuid, marbleType: marbleType,
            subjectAlternativeNames: try Coordinator.requestedNames(csr), now: now,
            validity: marbleCertificateValidity)
        let marbleCert = try SecretValue.certificate(
            certificate, type: "cert-ecdsa", privateKey: Array(marbleKey.derRepresentation))

        let plan = try plans[marbleType]?.get() ?? ParameterPlan(marble: marble, manifest: manifest)
        var secrets: [String: TemplateValues.Secret] = [:]
        let factory = SecretFactory(pki: pki, now: now)
        // Only the secrets this marble can reach are made: making every per-marble secret of the
        // manifest made an activation's cost grow with the manifest (BENCHMARKS.md, scale).
        for name in plan.secretNames {
            guard let definition = manifest.secrets[name] else { continue }
            if let shared = sharedSecrets[name] {
                secrets[name] = shared.templateValue
            } else if !definition.shared && !definition.userDefined {
                secrets[name] = try factory.generatePerMarble(
                    definition, name: name, marbleType: marbleType, uuid: uuid, rootSecret: rootSecret,
                    bindToMarble: !marble.disableSecretBinding
                ).templateValue
            }
            // User-defined secrets that were not set yet stay absent: a template naming one fails.
        }
        let values = TemplateValues(
            secrets: secrets,
            previousSecrets: secrets.merging(previousSecrets.mapValues(\.templateValue)) { _, previous in previous },
            marbleRun: [
                "RootCA": marbleRoot.templateValue, "MarbleCert": marbleCert.templateValue,
                "CoordinatorRoot": coordinatorRoot.templateValue, "CoordinatorIntermediate": intermediate.templateValue,
            ])

        var parameters = ActivationParameters(argv: marble.parameters.argv ?? [])
        for (path, value, template) in plan.files {
            parameters.files[path] = try Self.render(
                value, template: template, kind: .file, values: values, what: "file \(path)")
        }
        for (name, value, template) in plan.env {
            parameters.env[name] = try Self.render(
                value, template: template, kind: .env, values: values, what: "environment variable \(name)")
        }
        let rootPEM = Self.pem(marbleRoot.cert, "CERTIFICATE")
        parameters.env[PredefinedEnvironment.rootCA] = rootPEM
        parameters.env[PredefinedEnvironment.certificateChain] = Self.pem(marbleCert.cert, "CERTIFICATE") + rootPEM
        parameters.env[PredefinedEnvironment.privateKey] = Self.pem(marbleCert.privateKey, "PRIVATE KEY")
        parameters.env[PredefinedEnvironment.coordinatorRootCA] = Self.pem(coordinatorRoot.cert, "CERTIFICATE")
        if !marble.tls.isEmpty {
            parameters.env[PredefinedEnvironment.ttlsConfig] = try ttlsConfiguration(
                marble: marble, manifest: manifest, marbleCert: marbleCert, rootPEM: rootPEM, secrets: secrets)
        }
        return parameters
    }

    static func render(_ value: Manifest.ParameterValue, kind: Template.Kind, values: TemplateValues, what: String)
        throws -> [UInt8]
    {
        try render(value, template: ParameterPlan.parse(value, what: what), kind: kind, values: values, what: what)
    }

    static func render(
        _ value: Manifest.ParameterValue, template: Template?, kind: Template.Kind, values: TemplateValues,
        what: String
    ) throws -> [UInt8] {
        guard let template else { return value.data }
        do {
            let rendered = try template.render(values, as: kind)
            if kind == .env && rendered.contains(0) {
                throw CoordinatorError(.invalidManifest, "\(what) would contain a NUL byte")
            }
            return rendered
        } catch let error as CoordinatorError {
            throw error
        } catch let error as TemplateError {
            // The reason names the secret and the template position, never a value.
            throw CoordinatorError(.invalidManifest, "cannot render \(what): \(error)")
        }
    }

    static func pem(_ der: [UInt8], _ label: String) -> [UInt8] {
        let body = Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
        return Array("-----BEGIN \(label)-----\n\(body)\n-----END \(label)-----\n".utf8)
    }

    /// MarbleRun's `MARBLE_TTLS_CONFIG` JSON for the marble's TLS tags.
    func ttlsConfiguration(
        marble: Manifest.Marble, manifest: Manifest, marbleCert: SecretValue, rootPEM: [UInt8],
        secrets: [String: TemplateValues.Secret]
    ) throws -> [UInt8] {
        let ca = String(decoding: rootPEM, as: UTF8.self)
        let clientCert = String(decoding: Self.pem(marbleCert.cert, "CERTIFICATE"), as: UTF8.self)
        let clientKey = String(decoding: Self.pem(marbleCert.privateKey, "PRIVATE KEY"), as: UTF8.self)
        func endpoint(_ cert: String, _ key: String, clientAuth: Bool?) -> JSONValue {
            var members = [
                JSONMember("cacrt", .string(ca)), JSONMember("clicrt", .string(cert)),
                JSONMember("clikey", .string(key)),
            ]
            if let clientAuth { members.append(JSONMember("clientAuth", .bool(clientAuth))) }
            return .object(members)
        }
        var outgoing: [JSONMember] = []
        var incoming: [JSONMember] = []
        for tagName in marble.tls {
            guard let tag = manifest.tls[tagName] else { continue }
            for entry in tag.outgoing {
                outgoing.append(
                    JSONMember("\(entry.addr):\(entry.port)", endpoint(clientCert, clientKey, clientAuth: nil)))
            }
            for entry in tag.incoming {
                if !entry.cert.isEmpty, let secret = secrets[entry.cert] {
                    let cert = String(decoding: Self.pem(secret.cert, "CERTIFICATE"), as: UTF8.self)
                    let key = String(decoding: Self.pem(secret.privateKey, "PRIVATE KEY"), as: UTF8.self)
                    incoming.append(
                        JSONMember("*:\(entry.port)", endpoint(cert, key, clientAuth: !entry.disableClientAuth)))
                } else {
                    incoming.append(JSONMember("*:\(entry.port)", endpoint(clientCert, clientKey, clientAuth: true)))
                }
            }
        }
        // Serialized as Go's encoding/json writes MarbleRun's maps: keys sorted, later entries win.
        let tls = JSONValue.object([
            JSONMember("Outgoing", .object(outgoing)), JSONMember("Incoming", .object(incoming)),
        ])
        return JSONValue.object([JSONMember("tls", tls)]).serialized()
    }
}

/// A marble type's Files and Env parsed as templates, and the secrets they and its TLS tags can
/// reach: what every activation of the type needs, made once per manifest.
struct ParameterPlan: Sendable {
    /// Each value with its template; nil for a `NoTemplates` value.
    let files: [(path: String, value: Manifest.ParameterValue, template: Template?)]
    let env: [(name: String, value: Manifest.ParameterValue, template: Template?)]
    /// The secrets its templates name (current or previous values; a previous value falls back to
    /// the current one) and its TLS tags' certificates.
    let secretNames: Set<String>

    init(marble: Manifest.Marble, manifest: Manifest) throws(CoordinatorError) {
        var files: [(path: String, value: Manifest.ParameterValue, template: Template?)] = []
        for (path, value) in marble.parameters.files {
            files.append((path, value, try Self.parse(value, what: "file \(path)")))
        }
        var env: [(name: String, value: Manifest.ParameterValue, template: Template?)] = []
        for (name, value) in marble.parameters.env {
            env.append((name, value, try Self.parse(value, what: "environment variable \(name)")))
        }
        var names = Set<String>()
        for template in files.compactMap(\.template) + env.compactMap(\.template) {
            for action in template.actions where action.reference.scope != .marbleRun {
                names.insert(action.reference.name)
            }
        }
        for tagName in marble.tls {
            for entry in manifest.tls[tagName]?.incoming ?? [] where !entry.cert.isEmpty {
                names.insert(entry.cert)
            }
        }
        (self.files, self.env, secretNames) = (files, env, names)
    }

    /// The plan of every marble type of `manifest`, or the reason a type's parameters do not parse.
    static func plans(for manifest: Manifest) -> [String: Result<ParameterPlan, CoordinatorError>] {
        manifest.marbles.mapValues { marble in
            Result { () throws(CoordinatorError) in try ParameterPlan(marble: marble, manifest: manifest) }
        }
    }

    /// The template of a File or Env value; nil when it is taken as it is (`NoTemplates`).
    static func parse(_ value: Manifest.ParameterValue, what: String) throws(CoordinatorError) -> Template? {
        guard !value.noTemplates else { return nil }
        do {
            return try Template(parsing: value.data)
        } catch {
            // The reason names the template position, never a value.
            throw CoordinatorError(.invalidManifest, "cannot render \(what): \(error)")
        }
    }
}
