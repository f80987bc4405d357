import SwiftASN1
import X509

extension Certificate {
    /// The DER encoding; for a parsed certificate, the bytes it was parsed from.
    func derBytes() throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(self)
        return serializer.serializedBytes
    }
}
