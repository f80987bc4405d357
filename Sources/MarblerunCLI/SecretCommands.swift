import ArgumentParser
import Foundation
import JSONText
import SwiftASN1
import X509

/// `marblerun secret set|get`
struct SecretCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secret", abstract: "Set user-defined secrets and read the secrets your roles allow.",
        subcommands: [Set.self, Get.self])

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set",
            abstract: "Set user-defined secrets from a JSON file, or one certificate secret from a PEM file.",
            discussion: """
                FILE is JSON as MarbleRun takes it: {"NAME": {"Cert": base64 DER or PEM, "Private": \
                base64 PKCS #8, "Key": base64}}. With --from-pem NAME, FILE is a PEM file holding a \
                certificate and its private key.
                """)
        @Argument(help: "The secrets file.") var file: String
        @Argument(help: "The Coordinator's client API, HOST:PORT.") var address: String
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var user: UserOptions
        @Option(name: .customLong("from-pem"), help: "Read FILE as PEM (certificate and key) for this secret.")
        var fromPEM: String?

        func run() async throws {
            guard let data = FileManager.default.contents(atPath: file), data.count <= 8 << 20 else {
                throw CLIError("cannot read \(file)")
            }
            let secrets: JSONValue
            if let fromPEM {
                secrets = .object([JSONMember(fromPEM, try Self.pemSecret(String(decoding: data, as: UTF8.self)))])
            } else {
                guard case .object? = try? JSONParser().parse(Array(data)) else {
                    throw CLIError("\(file) is not a JSON object of secrets")
                }
                secrets = try JSONParser().parse(Array(data))
            }
            _ = try await connection.connect(address, identity: user.identity).call(
                .POST, "/api/v2/secrets", body: .object([JSONMember("secrets", secrets)]))
            print("Secrets set.")
        }

        static func pemSecret(_ text: String) throws -> JSONValue {
            guard let documents = try? PEMDocument.parseMultiple(pemString: text),
                let certificate = documents.first(where: { $0.discriminator == "CERTIFICATE" })
            else { throw CLIError("the PEM file holds no certificate") }
            var members = [JSONMember("Cert", .base64(certificate.derBytes))]
            if let key = documents.first(where: { $0.discriminator.hasSuffix("PRIVATE KEY") }) {
                guard let parsed = try? Certificate.PrivateKey(pemDocument: key),
                    let pkcs8 = try? parsed.serializeAsPEM()
                else { throw CLIError("the PEM file's private key does not parse") }
                members.append(JSONMember("Private", .base64(pkcs8.derBytes)))
            }
            return .object(members)
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "get", abstract: "Print secrets your roles may read.")
        @Argument(help: "Secret names, then the Coordinator's client API, HOST:PORT.") var arguments: [String]
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var user: UserOptions
        @Option(
            name: [.customShort("o"), .long],
            help: "Write the secrets (JSON, as the Coordinator sends them) to this file, mode 0600.")
        var output: String?

        func run() async throws {
            guard arguments.count >= 2, let address = arguments.last else {
                throw CLIError("give at least one secret name and the Coordinator's HOST:PORT")
            }
            let names = arguments.dropLast()
            let query = names.map { "s=\($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0)" }
                .joined(separator: "&")
            let answer = try await connection.connect(address, identity: user.identity).call(
                .GET, "/api/v2/secrets?\(query)")
            guard let secrets = answer["secrets"] else { throw CLIError("the answer holds no secrets") }
            if let output {
                try MarblerunCLI.output(secrets.serialized() + [UInt8(ascii: "\n")], to: output, mode: 0o600)
                FileHandle.standardError.write(Data("wrote \(names.count) secret(s) to \(output)\n".utf8))
                return
            }
            emit(secrets, text: Self.describe(secrets), json: connection.json)
        }

        static func describe(_ secrets: JSONValue) -> String {
            guard case .object(let members) = secrets else { return "" }
            return members.map { member in
                let secret = member.value
                var lines = ["\(member.key): \(secret["Type"]?.stringValue ?? "")"]
                if let cert = secret["Cert"]?.bytes, let parsed = try? Certificate(derEncoded: cert),
                    let pem = try? parsed.serializeAsPEM().pemString
                {
                    lines.append(pem)
                }
                if let key = secret["Private"]?.bytes { lines.append("  Private: \(Data(key).base64EncodedString())") }
                return lines.joined(separator: "\n")
            }.joined(separator: "\n")
        }
    }
}
