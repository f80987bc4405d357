import Crypto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import MeshAPI
import NIOCore
import NIOPosix
import NIOSSL
import X509

/// Baseline servers for activations, each with a P-256 self-signed certificate like the
/// Coordinator's, requiring a client certificate and accepting any, as the mesh API does.
enum HandshakeServer {
    /// A fresh self-signed identity: certificate and private key, both DER.
    static func identity() throws -> (certificate: [UInt8], key: [UInt8]) {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("handshake baseline") }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: Date() - 60,
            notValidAfter: Date() + 3600, issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: Certificate.Extensions {}, issuerPrivateKey: .init(key))
        return (try certificate.serializeAsPEM().derBytes, Array(key.derRepresentation))
    }

    /// A bare NIO TLS server: the handshake and nothing else.
    static func run(port: Int) async throws {
        let (certificateDER, keyDER) = try identity()
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: certificateDER, format: .der))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: keyDER, format: .der)))
        tls.certificateVerification = .noHostnameVerification
        tls.minimumTLSVersion = .tlsv12
        let context = try NIOSSLContext(configuration: tls)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 1024)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        NIOSSLServerHandler(context: context) { _, promise in promise.succeed(.certificateVerified) })
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
        try await channel.closeFuture.get()
    }

    /// A grpc-swift server with the Coordinator's transport settings whose `Activate` returns a
    /// recorded Coordinator response without doing any work: what the gRPC stack alone costs.
    static func runGRPC(port: Int, response: Rpc_ActivationResp) async throws {
        let (certificateDER, keyDER) = try identity()
        let transport = HTTP2ServerTransport.Posix(
            address: .ipv4(host: "127.0.0.1", port: port),
            transportSecurity: .mTLS(
                certificateChain: [.bytes(certificateDER, format: .der)], privateKey: .bytes(keyDER, format: .der)
            ) { config in
                config.customVerificationCallback = { certificates, promise in
                    promise.succeed(.certificateVerified(VerificationMetadata(ValidatedCertificateChain(certificates))))
                }
            },
            config: .defaults)
        try await GRPCServer(transport: transport, services: [CannedMarbleService(response: response)]).serve()
    }

    struct CannedMarbleService: Rpc_Marble.SimpleServiceProtocol {
        let response: Rpc_ActivationResp
        func activate(request: Rpc_ActivationReq, context: ServerContext) async throws -> Rpc_ActivationResp {
            response
        }
    }
}
