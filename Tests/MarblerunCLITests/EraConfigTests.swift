import Attestation
import Testing

@testable import MarblerunCLI

/// The era config decides which Coordinator the CLI trusts: malformed ones are refused, never
/// read leniently.
@Suite struct EraConfigTests {
    static let hex = String(repeating: "ab", count: 32)

    @Test func marbleRunsNestedFormAndTheFlatFormAreRead() throws {
        let nested = try EraConfig.parse(
            Array(
                #"{"coordinator": {"UniqueID": "\#(Self.hex)", "Debug": false, "AcceptedTCBStatuses": ["SWHardeningNeeded"]}}"#
                    .utf8), name: "era")
        #expect(nested.policy.uniqueID?.count == 32)
        #expect(nested.policy.acceptedTCBStatuses.map(\.rawValue) == ["SWHardeningNeeded"])
        let flat = try EraConfig.parse(
            Array(#"{"SignerID": "\#(Self.hex)", "ProductID": 3, "SecurityVersion": 2, "UniqueID": null}"#.utf8),
            name: "era")
        #expect(flat.policy.signerID?.count == 32 && flat.policy.productID == 3 && flat.policy.securityVersion == 2)
    }

    @Test(arguments: [
        "", "[]", "{}", #"{"UniqueID": "abc"}"#, #"{"UniqueID": 5}"#, #"{"SignerID": "\#(hex)"}"#,
        #"{"SignerID": "\#(hex)", "ProductID": 70000, "SecurityVersion": 1}"#,
        #"{"UniqueID": "\#(hex)", "Debug": "no"}"#, #"{"UniqueID": "\#(hex)", "Colour": 1}"#,
        #"{"UniqueID": "\#(hex)", "AcceptedTCBStatuses": [1]}"#,
    ])
    func malformedEraConfigsAreRefused(text: String) {
        #expect(throws: AttestationError.self) { _ = try EraConfig.parse(Array(text.utf8), name: "era") }
    }
}
