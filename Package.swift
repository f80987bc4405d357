// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "marblerun-swift",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Manifest", targets: ["Manifest"]),
        .library(name: "JSONText", targets: ["JSONText"]),
        .library(name: "Attestation", targets: ["Attestation"]),
        .library(name: "AttestationPCCS", targets: ["AttestationPCCS"]),
        .executable(name: "marblerun", targets: ["marblerun"]),
        .executable(name: "bench", targets: ["bench"]),
        .executable(name: "coordinator-bench", targets: ["coordinator-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.10.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.3.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "5.0.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // Strict JSON parsing that keeps key order, number text and byte ranges; Go-style output.
        .target(name: "JSONText"),
        // The manifest model, validation and template engine. Pure: no I/O.
        .target(
            name: "Manifest",
            dependencies: [
                "JSONText",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // PKCS #11's C types (p11-kit's header, kept in the folder); the token's module is loaded at run time.
        .systemLibrary(name: "CPKCS11", path: "Sources/CPKCS11"),
        // Keys in a PKCS #11 token (an HSM, a smart card, SoftHSM2): find, sign, decrypt.
        .target(name: "PKCS11", dependencies: ["CPKCS11", "JSONText"]),
        // One cluster statement, kept and checked offline: its format and its verifier.
        .target(
            name: "ClusterStatement",
            dependencies: [
                "Attestation", "AuditLog", "Manifest", "JSONText",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
            ]),
        // The `marblerun` command's commands, as a library so tests can drive them.
        .target(
            name: "MarblerunCLI",
            dependencies: [
                "Manifest",
                "ClusterStatement",
                "AuditLog",
                "Attestation",
                "AttestationPCCS",
                "JSONText",
                "PKCS11",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        // Evidence in, verified claims out: DCAP quotes, collateral, the simulated platform.
        .target(
            name: "Attestation",
            dependencies: [
                "JSONText",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        // Collateral from a PCCS or Intel PCS over HTTPS (v4 API), cached until it expires.
        .target(
            name: "AttestationPCCS",
            dependencies: [
                "Attestation", "JSONText",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
            ]
        ),
        // The mesh API (`rpc.Marble/Activate`): protobuf messages and gRPC stubs generated from
        // marble.proto by scripts/generate-mesh-api and committed.
        .target(
            name: "MeshAPI",
            dependencies: [
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            exclude: ["marble.proto"]
        ),
        // A small transactional key-value store with optimistic versions: SQLite (embedded),
        // PostgreSQL (shared by replicas) and memory.
        .target(
            name: "Store",
            dependencies: [
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The update log: signed, hash-chained JSON lines that clients verify offline.
        .target(
            name: "AuditLog",
            dependencies: [
                "JSONText",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
            ]
        ),
        // The Coordinator without networking: states, CA, manifest, secrets, activation, sealed state.
        .target(
            name: "CoordinatorCore",
            dependencies: [
                "JSONText",
                "AuditLog",
                "Manifest",
                "Attestation",
                "Store",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        // The marble side: key, CSR and quote, activation over mutual TLS to a trusted Coordinator.
        .target(
            name: "MarbleKit",
            dependencies: [
                "MeshAPI", "Attestation",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The Coordinator's servers: client REST API (HTTPS), mesh gRPC API (mutual TLS), metrics.
        .target(
            name: "CoordinatorServer",
            dependencies: [
                "CoordinatorCore", "MeshAPI", "Manifest", "Attestation", "AttestationPCCS", "Store", "JSONText",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        .executableTarget(
            name: "coordinator",
            dependencies: [
                "CoordinatorServer", "CoordinatorCore", "Attestation", "AttestationPCCS", "JSONText",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .executableTarget(name: "marblerun", dependencies: ["MarblerunCLI"]),
        // The Kubernetes admission webhook for marble pods (AdmissionReview in, JSON Patch out).
        .target(
            name: "MarbleInjector",
            dependencies: [
                "JSONText",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCertificateReloading", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "marble-injector",
            dependencies: [
                "MarbleInjector", "Attestation",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(
            name: "marble",
            dependencies: [
                "MarbleKit", "Attestation", "AttestationPCCS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // The emojivoto demo: three Swift marbles (web, emoji, voting) talking over mutual TLS.
        .target(
            name: "EmojiVoto",
            dependencies: [
                "MarbleKit",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/emojivoto/Sources/EmojiVoto"),
        .executableTarget(
            name: "emojivoto-web", dependencies: ["EmojiVoto"], path: "Examples/emojivoto/Sources/emojivoto-web"),
        .executableTarget(
            name: "emojivoto-emoji", dependencies: ["EmojiVoto"], path: "Examples/emojivoto/Sources/emojivoto-emoji"),
        .executableTarget(
            name: "emojivoto-voting", dependencies: ["EmojiVoto"],
            path: "Examples/emojivoto/Sources/emojivoto-voting"),
        // What every test suite and benchmark shares: test data, certificates and keys, test marbles and
        // manifests, PostgreSQL servers, processes.
        .target(
            name: "CoordinatorTesting",
            dependencies: [
                "Manifest", "Attestation",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
            ]
        ),
        .executableTarget(
            name: "coordinator-bench",
            dependencies: [
                "CoordinatorTesting", "MeshAPI", "Attestation", "CoordinatorCore", "Store",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Benchmarks/coordinator-bench"),
        // Fuzz targets (one per input surface); `marblerun-fuzz`, libFuzzer's entry points, which
        // scripts/fuzz builds with -sanitize=fuzzer; `marblerun-fuzz-corpus` lists targets, writes
        // seeds and replays inputs in an ordinary build.
        .target(
            name: "FuzzTargets",
            dependencies: [
                "Attestation", "AuditLog", "CoordinatorCore", "CoordinatorServer", "CoordinatorTesting", "JSONText",
                "Manifest", "MeshAPI", "Store",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            path: "Fuzz/Sources/FuzzTargets"
        ),
        .executableTarget(name: "marblerun-fuzz", dependencies: ["FuzzTargets"], path: "Fuzz/Sources/marblerun-fuzz"),
        .executableTarget(
            name: "marblerun-fuzz-corpus", dependencies: ["FuzzTargets"], path: "Fuzz/Sources/marblerun-fuzz-corpus"),
        .executableTarget(
            name: "bench", dependencies: ["Manifest", "CoordinatorTesting", "Attestation"], path: "Benchmarks/bench"),
        .testTarget(
            name: "ManifestTests",
            dependencies: ["Manifest", "CoordinatorTesting", "JSONText"]
        ),
        .testTarget(
            name: "AttestationTests",
            dependencies: [
                "Attestation", "CoordinatorTesting", .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        .testTarget(
            name: "AttestationPCCSTests",
            dependencies: [
                "AttestationPCCS", "Attestation", "CoordinatorTesting",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        .testTarget(
            name: "StoreTests",
            dependencies: ["Store", "CoordinatorTesting"]
        ),
        .testTarget(name: "FuzzTests", dependencies: ["FuzzTargets", "CoordinatorTesting"]),
        .testTarget(
            name: "AuditLogTests",
            dependencies: [
                "AuditLog", "JSONText",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .testTarget(
            name: "CoordinatorCoreTests",
            dependencies: [
                "CoordinatorCore", "Manifest", "Attestation", "CoordinatorTesting", "Store", "AuditLog",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        .testTarget(
            name: "CoordinatorServerTests",
            dependencies: [
                "CoordinatorTesting", "MeshAPI", "Attestation", "Manifest", "Store", "AuditLog", "CoordinatorCore",
                "MarbleKit", "coordinator", "marble", "marblerun", "emojivoto-web", "emojivoto-emoji",
                "emojivoto-voting",
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        .testTarget(
            name: "KubernetesTests",
            dependencies: [
                "MarbleInjector", "JSONText", "CoordinatorTesting", "Attestation", "marble-injector", "coordinator",
                "marble",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        .testTarget(
            name: "MarblerunCLITests",
            dependencies: ["MarblerunCLI", "Manifest", "CoordinatorTesting", "marblerun"]
        ),
    ]
)
