import Attestation
import CoordinatorCore
import Crypto
import Foundation
import CoordinatorTesting
import Testing
import X509

@Suite struct FeatureTests {
    static let gates = [Coordinator.signQuoteFeature, Coordinator.monotonicCounterFeature]

    @Test func featureGatesAreOffUnlessTheManifestEnablesThem() async throws {
        let fixture = try await UserFixture.make()
        let quote = try TestMarble().quote(fixture.platform, enclave: fixture.enclave)
        await expectCode(.forbidden) { _ = try await fixture.coordinator.signQuote(quote) }
        await expectCode(.forbidden) {
            _ = try await fixture.coordinator.setMonotonicCounter(
                marbleType: "backend", uuid: UUID(), name: "n", value: 1)
        }
        await fixture.store.close()
    }

    /// The signature is the root key's over SHA-256 of base64(quote) followed by the TCB status.
    @Test func signQuoteVerifiesAndSignsWithTheRootKey() async throws {
        let fixture = try await UserFixture.make(featureGates: Self.gates)
        let quote = try TestMarble().quote(fixture.platform, enclave: fixture.enclave)
        let (status, signature) = try await fixture.coordinator.signQuote(quote)
        #expect(status == "UpToDate")
        let root = try #require(P256.Signing.PublicKey(await fixture.coordinator.pki.root.publicKey))
        let digest = SHA256.hash(data: Array((Data(quote).base64EncodedString() + status).utf8))
        #expect(root.isValidSignature(try P256.Signing.ECDSASignature(derRepresentation: signature), for: digest))
        var tampered = quote
        tampered[100] ^= 1
        await expectCode(.invalidRequest) { _ = try await fixture.coordinator.signQuote(tampered) }
        await expectCode(.invalidRequest) { _ = try await fixture.coordinator.signQuote([1, 2, 3]) }
        await fixture.store.close()
    }

    @Test func countersBelongToAMarbleAndOnlyIncrease() async throws {
        let fixture = try await UserFixture.make(featureGates: Self.gates)
        try await fixture.setMarbleSecrets()
        let parameters = try await fixture.activate()
        let leaf = try #require(pemBlocks(parameters.env[PredefinedEnvironment.certificateChain]).first)
        let marble = try await fixture.coordinator.verifyMarble(leaf)
        #expect(marble.type == "backend")
        await expectCode(.unauthenticated) {
            _ = try await fixture.coordinator.verifyMarble(try TestMarble().certificate)
        }
        await expectCode(.unauthenticated) { _ = try await fixture.coordinator.verifyMarble(nil) }

        let coordinator = fixture.coordinator
        // (value set, value before): a lower value leaves the counter as it is.
        for (value, previous) in [(5, 0), (3, 5), (7, 5), (0, 7)] as [(UInt64, UInt64)] {
            let before = try await coordinator.setMonotonicCounter(
                marbleType: marble.type, uuid: marble.uuid, name: "epoch", value: value)
            #expect(before == previous, "setting \(value)")
        }
        #expect(
            try await coordinator.setMonotonicCounter(marbleType: marble.type, uuid: UUID(), name: "epoch", value: 1)
                == 0)
        await expectCode(.invalidRequest) {
            _ = try await coordinator.setMonotonicCounter(
                marbleType: marble.type, uuid: marble.uuid, name: "", value: 1)
        }
        await fixture.store.close()
    }
}
