import AsyncHTTPClient
import Crypto
import Foundation
import NIOSSL
import SwiftASN1
import X509

/// A local HTTPS stand-in for a PCCS (Tests/Support/pcs_server.py) on 127.0.0.1, serving a
/// simulated platform's collateral folder; it stops when this object goes.
public final class LocalPCCS {
    let process = Process()
    let input = Pipe()
    public let port: Int
    /// The server's self-signed TLS certificate (for 127.0.0.1).
    public let rootCertificateDER: [UInt8]

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Serves `folder` (Intel PCS layout: `tcbInfo.json`, `qeIdentity.json`, the CRLs and chains);
    /// while `holdFile` exists, TCB Info requests are counted but not answered.
    public init(folder: URL, holdFile: URL? = nil) throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("pccs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("local PCCS") }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: Date().addingTimeInterval(-60),
            notValidAfter: Date().addingTimeInterval(3600), issuer: name, subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: Certificate.Extensions {
                SubjectAlternativeNames([.ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))])
            },
            issuerPrivateKey: .init(key))
        let certPath = work.appendingPathComponent("cert.pem")
        let keyPath = work.appendingPathComponent("key.pem")
        try Data(certificate.serializeAsPEM().pemString.utf8).write(to: certPath)
        try Data(key.pemRepresentation.utf8).write(to: keyPath)
        rootCertificateDER = try certificate.serializeAsPEM().derBytes
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments =
            [
                "python3", TestData.packageRoot.appendingPathComponent("Tests/Support/pcs_server.py").path,
                folder.path, certPath.path, keyPath.path,
            ] + (holdFile.map { [$0.path] } ?? [])
        let output = Pipe()
        process.standardOutput = output
        process.standardInput = input
        try process.run()
        var line = Data()
        while let byte = try output.fileHandleForReading.read(upToCount: 1), !byte.isEmpty, byte != Data("\n".utf8) {
            line.append(byte)
        }
        guard let port = Int(String(decoding: line, as: UTF8.self)) else {
            throw Failure(description: "the local PCCS did not start")
        }
        self.port = port
    }

    public var baseURL: String { "https://127.0.0.1:\(port)" }

    /// A client that trusts exactly this server's certificate.
    public func client() throws -> HTTPClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates([try NIOSSLCertificate(bytes: rootCertificateDER, format: .der)])
        tls.minimumTLSVersion = .tlsv12
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
    }

    /// How often each route was served (counted when a request arrives).
    public func stats(_ client: HTTPClient) async throws -> [String: Int] {
        let response = try await client.execute(HTTPClientRequest(url: "\(baseURL)/_stats"), timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 16)
        return try JSONDecoder().decode([String: Int].self, from: Data(body.readableBytesView))
    }

    deinit {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}
