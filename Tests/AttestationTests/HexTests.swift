import Attestation
import Testing

struct HexTests {
    @Test func encodesAndDecodesBothCases() {
        let bytes: [UInt8] = [0x00, 0x0F, 0xA5, 0xFF]
        #expect(Hex.encode(bytes) == "000fa5ff")
        #expect(Hex.encode(bytes, uppercase: true) == "000FA5FF")
        #expect(Hex.decode("000fa5ff") == bytes)
        #expect(Hex.decode("000FA5FF") == bytes)
        #expect(Hex.decode("") == [])
    }

    @Test(arguments: ["0", "abc", "zz", "0g", " 0", "é0", "0x00"])
    func refusesWhatIsNotHex(_ text: String) {
        #expect(Hex.decode(text) == nil)
    }
}
